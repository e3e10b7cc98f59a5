"""Users for the backend tests: their ids come from the database whatever the store."""

import pytest


@pytest.fixture
def users(django_user_model):
    return [django_user_model.objects.create_user(f"user{i}") for i in range(3)]


@pytest.fixture
def uid(users):
    return users[0].pk
