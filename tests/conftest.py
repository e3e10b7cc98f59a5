"""Fixtures shared by the whole suite: two users and a group holding both.

Most behaviour is per recipient, so tests need at least two users to show that one user's
messages, counts and state changes never leak to another.
"""

import pytest
from django.contrib.auth.models import Group


@pytest.fixture
def user(db, django_user_model):
    return django_user_model.objects.create_user(
        username="alice", email="alice@example.com", password="password"
    )


@pytest.fixture
def other_user(db, django_user_model):
    return django_user_model.objects.create_user(
        username="bob", email="bob@example.com", password="password"
    )


@pytest.fixture
def group(db, user, other_user):
    staff = Group.objects.create(name="staff")
    staff.user_set.add(user, other_user)
    return staff
