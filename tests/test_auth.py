"""
``pigeonhole.auth``: the users of many stream requests loaded together, with
``django.contrib.auth.get_user()``'s checks applied to each.
"""

import asyncio
import random
from importlib import import_module

import pytest
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, get_user
from django.contrib.auth.backends import ModelBackend
from django.core.cache import caches
from django.core.exceptions import ValidationError
from django.db.backends.utils import CursorWrapper
from django.http import HttpRequest
from django.test import Client

from pigeonhole.auth import load_user, load_users
from pigeonhole.live import StoreReads

pytestmark = pytest.mark.django_db(transaction=True)


def login(user) -> str:
    """Log ``user`` in as a browser would; return the session key."""
    client = Client()
    client.force_login(user)
    return client.session.session_key


def request_for(key: str | None) -> HttpRequest:
    """A request whose session is ``key``'s, not yet loaded, as a stream request's is."""
    request = HttpRequest()
    request.session = import_module(settings.SESSION_ENGINE).SessionStore(key)
    return request


def edit_session(key: str, **changes) -> None:
    session = import_module(settings.SESSION_ENGINE).SessionStore(key)
    for name, value in changes.items():
        session[name] = value
    session.save()


class OwnGetUser(ModelBackend):
    """A backend with a get_user() of its own, which only it can run."""

    def get_user(self, user_id):
        user = super().get_user(user_id)
        if user is not None:
            user.loaded_by_own_backend = True
        return user


@pytest.fixture(autouse=True, params=["db", "cached_db"])
def engine(request, settings):
    """Each test on both engines that keep their sessions in the database."""
    settings.SESSION_ENGINE = f"django.contrib.sessions.backends.{request.param}"
    return request.param


@pytest.fixture
def people(django_user_model):
    return [
        django_user_model.objects.create_user(f"person{n}", password="secret") for n in range(6)
    ]


def test_a_batch_gives_each_request_its_own_users_id(people):
    keys = [login(person) for person in people for _ in range(2)]
    order = list(range(len(keys)))
    random.Random(7).shuffle(order)
    users = load_users([(request_for(keys[n]),) for n in order])
    assert [user.pk for user in users] == [people[n // 2].pk for n in order]
    # Two streams of one user get a user object each.
    assert len({id(user) for user in users}) == len(users)


@pytest.fixture
def statements(monkeypatch):
    """The SQL statements run from now on, on every thread's connection."""
    seen = []
    execute = CursorWrapper.execute

    def noted(self, sql, params=None):
        seen.append(sql)
        return execute(self, sql, params)

    monkeypatch.setattr(CursorWrapper, "execute", noted)
    return seen


def test_streams_loading_users_at_once_load_sessions_and_users_in_two_queries(
    people, statements, engine
):
    """What a reconnect storm costs: one session query and one user query per batch."""
    requests = [request_for(login(person)) for person in people for _ in range(3)]

    async def load_all():
        reads = StoreReads.for_loop()
        return await asyncio.gather(*(reads.run(load_user, request) for request in requests))

    statements.clear()
    users = asyncio.run(load_all())
    assert [user.pk for user in users] == [person.pk for person in people for _ in range(3)]
    sessions = [sql for sql in statements if "django_session" in sql]
    accounts = [sql for sql in statements if "auth_user" in sql]
    # cached_db finds the sessions, saved at login, in its cache.
    assert (len(sessions), len(accounts)) == ({"db": 1, "cached_db": 0}[engine], 1), statements


def test_a_session_edited_to_name_another_user_is_refused_and_flushed(people):
    alice, bob = people[:2]
    key = login(alice)
    edit_session(key, **{SESSION_KEY: str(bob.pk)})  # alice's hash, bob's id
    honest = login(bob)
    request, other = request_for(key), request_for(honest)
    tampered, fine = load_users([(request,), (other,)])
    assert not tampered.is_authenticated
    assert request.session.session_key is None and dict(request.session) == {}
    assert fine.pk == bob.pk
    # Django's own check agrees.
    assert not get_user(request_for(key)).is_authenticated


def test_a_session_from_before_a_password_change_is_refused_and_flushed(people):
    alice, bob = people[:2]
    old, current = login(alice), login(bob)
    alice.set_password("changed")
    alice.save()
    requests = [request_for(old), request_for(current)]
    refused, fine = load_users([(request,) for request in requests])
    assert not refused.is_authenticated
    assert requests[0].session.session_key is None
    assert fine.pk == bob.pk


def test_a_session_without_its_hash_is_refused(people):
    key = login(people[0])
    edit_session(key, **{HASH_SESSION_KEY: ""})
    request = request_for(key)
    (user,) = load_users([(request,)])
    assert not user.is_authenticated
    assert request.session.session_key is None


def test_a_session_hashed_with_a_fallback_secret_is_kept_with_a_new_key(people, settings):
    alice, bob = people[:2]
    settings.SECRET_KEY = "the-old-secret-of-the-site"
    old_key, bobs = login(alice), login(bob)
    old_hash = request_for(old_key).session[HASH_SESSION_KEY]
    settings.SECRET_KEY_FALLBACKS = ["the-old-secret-of-the-site"]
    settings.SECRET_KEY = "the-new-secret-of-the-site"
    request = request_for(old_key)
    user, other = load_users([(request,), (request_for(bobs),)])
    assert user.pk == alice.pk and other.pk == bob.pk
    assert request.session.session_key != old_key
    assert request.session[HASH_SESSION_KEY] == alice.get_session_auth_hash() != old_hash


def test_an_inactive_user_is_refused_but_keeps_the_session(people):
    alice, bob = people[:2]
    key = login(alice)
    alice.is_active = False
    alice.save()
    request = request_for(key)
    refused, fine = load_users([(request,), (request_for(login(bob)),)])
    assert not refused.is_authenticated and fine.pk == bob.pk
    assert request.session.session_key == key  # as ModelBackend.get_user() leaves it


def test_a_user_deleted_since_the_login_is_anonymous(people):
    key = login(people[0])
    people[0].delete()
    (user,) = load_users([(request_for(key),)])
    assert not user.is_authenticated


def test_a_backend_no_longer_configured_is_anonymous(people, settings):
    key = login(people[0])
    settings.AUTHENTICATION_BACKENDS = ["tests.test_auth.OwnGetUser"]
    (user,) = load_users([(request_for(key),)])
    assert not user.is_authenticated


def test_a_backend_with_its_own_get_user_loads_its_users_itself(people, settings):
    settings.AUTHENTICATION_BACKENDS = ["tests.test_auth.OwnGetUser"]
    keys = [login(person) for person in people[:2]]
    users = load_users([(request_for(key),) for key in keys])
    assert [user.pk for user in users] == [person.pk for person in people[:2]]
    assert all(user.loaded_by_own_backend for user in users)


def test_unknown_and_missing_sessions_are_anonymous(people):
    key = login(people[0])
    requests = [request_for("no-such-session-key"), request_for(None), request_for(key)]
    users = load_users([(request,) for request in requests])
    assert [user.is_authenticated for user in users] == [False, False, True]
    assert requests[0].session.session_key is None


def test_a_user_id_the_model_refuses_fails_that_request_alone(people):
    key, good = login(people[0]), login(people[1])
    edit_session(key, **{SESSION_KEY: "not-a-number"})
    broken, fine = load_users([(request_for(key),), (request_for(good),)])
    assert isinstance(broken, ValidationError)  # as get_user() raises it
    assert fine.pk == people[1].pk


def test_cached_sessions_are_read_from_the_cache_and_cached_again_after_a_miss(
    people, statements, engine
):
    if engine != "cached_db":
        pytest.skip("the cache of cached_db")
    keys = [login(person) for person in people]
    statements.clear()
    users = load_users([(request_for(key),) for key in keys])
    assert [user.pk for user in users] == [person.pk for person in people]
    assert not [sql for sql in statements if "django_session" in sql]
    caches[settings.SESSION_CACHE_ALIAS].clear()
    statements.clear()
    load_users([(request_for(key),) for key in keys])
    assert len([sql for sql in statements if "django_session" in sql]) == 1
    statements.clear()
    users = load_users([(request_for(key),) for key in keys])
    assert not [sql for sql in statements if "django_session" in sql]
    assert [user.pk for user in users] == [person.pk for person in people]


def test_sessions_of_other_engines_load_themselves_and_their_users_together(
    people, statements, settings
):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    keys = [login(person) for person in people]
    statements.clear()
    users = load_users([(request_for(key),) for key in keys])
    assert [user.pk for user in users] == [person.pk for person in people]
    assert len([sql for sql in statements if "auth_user" in sql]) == 1
    assert not [sql for sql in statements if "django_session" in sql]
