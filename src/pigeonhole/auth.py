"""
The users of many stream requests, loaded together: a reconnect storm's sessions and users.

When a deploy drops every stream, thousands come back within seconds, and
each must load its session and its user before it can resume. Loaded one
request at a time (``django.contrib.auth.get_user()``), that is a query for
the session and a query for the user per stream, each built by the ORM from
scratch. :func:`load_users` loads the sessions of a batch of requests together
(the ``db`` engine: one query; ``cached_db``: one cache lookup, then one query
for what the cache missed; other engines load each session as before), their
users in one query, then applies to each request exactly the checks
``get_user()`` applies:

- the session names an authentication backend that is still in
  ``AUTHENTICATION_BACKENDS``;
- the backend's ``user_can_authenticate()`` accepts the user (an inactive
  user is refused, as ``ModelBackend.get_user()`` refuses it);
- the session's auth hash matches the user's (a changed password logs every
  other session out), or one made with a key of ``SECRET_KEY_FALLBACKS``,
  in which case the session gets a new key and the current hash; a session
  that matches neither is flushed.

Whatever this module cannot load as Django would (a backend with a
``get_user()`` of its own, a session engine that does not keep its sessions
in the database, a user id the user model refuses) goes through
``django.contrib.auth.get_user()`` itself, one request at a time.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, cast

from django.conf import settings
from django.contrib.auth import (
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
    get_user,
    get_user_model,
    load_backend,
)
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.base import SessionBase
from django.contrib.sessions.backends.cached_db import SessionStore as CachedStore
from django.contrib.sessions.backends.db import SessionStore as DatabaseStore
from django.http import HttpRequest
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from .live import read_together

__all__ = ["load_user", "load_users"]


def load_users(calls: Sequence[tuple[HttpRequest]]) -> list[Any]:
    """
    Return the user of each request in ``calls``, as ``get_user(request)`` would.

    A request's result is its user (``AnonymousUser`` if none), or the
    exception loading it raised; the requests' sessions are loaded and, as
    ``get_user()`` does, cycled or flushed.
    """
    requests = [request for (request,) in calls]
    _load_sessions([request.session for request in requests])
    results: list[Any] = [None] * len(requests)
    wanted: dict[int, tuple[Any, ...]] = {}
    for n, request in enumerate(requests):
        try:
            found = _session_user(request)
            if found is _DJANGO:
                results[n] = get_user(request)
            elif found is None:
                results[n] = AnonymousUser()
            else:
                wanted[n] = found
        except Exception as exc:
            results[n] = exc
    if not wanted:
        return results
    user_model = get_user_model()
    ids = {user_id for user_id, _ in wanted.values()}
    users = {user.pk: user for user in user_model._default_manager.filter(pk__in=ids)}
    given: set[Any] = set()
    for n, (user_id, backend) in wanted.items():
        user = users.get(user_id)
        if user is not None and user_id in given:
            user = copy.copy(user)  # two streams of one user: a user object each
        given.add(user_id)
        try:
            results[n] = _checked(requests[n], user, backend)
        except Exception as exc:
            results[n] = exc
    return results


@read_together(load_users)
def load_user(request: HttpRequest) -> Any:
    """
    Return the user of ``request``: ``django.contrib.auth.get_user(request)``.

    A stream reader that runs several at once runs them as :func:`load_users`.
    """
    return get_user(request)


#: What :func:`_session_user` answers for a session that only ``get_user()`` can load.
_DJANGO = ("get_user",)


def _session_user(request: HttpRequest) -> tuple[Any, ...] | None:
    """
    Return the user id in ``request``'s session and the backend that loads it.

    None for a session without a user (or whose backend is no longer
    configured), as ``get_user()`` then answers ``AnonymousUser``; ``_DJANGO``
    for a user that only the backend's own ``get_user()`` can load.
    """
    session = request.session
    try:
        raw_id = session[SESSION_KEY]
        backend_path = session[BACKEND_SESSION_KEY]
    except KeyError:
        return None
    if backend_path not in settings.AUTHENTICATION_BACKENDS:
        return None
    backend = load_backend(backend_path)
    if not isinstance(backend, ModelBackend) or type(backend).get_user is not (
        ModelBackend.get_user
    ):
        return _DJANGO
    try:
        user_id = get_user_model()._meta.pk.to_python(raw_id)
    except Exception:
        return _DJANGO  # whose get_user() raises as it would on its own
    return user_id, backend


def _checked(request: HttpRequest, user: Any, backend: ModelBackend) -> Any:
    """
    Return ``user`` if ``request``'s session may act as it, else ``AnonymousUser``.

    ``ModelBackend.get_user()``'s check, then ``get_user()``'s verification
    of the session's auth hash, as Django writes them.
    """
    if user is not None and not backend.user_can_authenticate(user):
        user = None
    if hasattr(user, "get_session_auth_hash"):
        session = request.session
        session_hash = session.get(HASH_SESSION_KEY)
        if not session_hash:
            verified = False
        else:
            session_auth_hash = user.get_session_auth_hash()
            verified = constant_time_compare(session_hash, session_auth_hash)
        if not verified:
            if session_hash and any(
                constant_time_compare(session_hash, fallback)
                for fallback in user.get_session_auth_fallback_hash()
            ):
                session.cycle_key()
                session[HASH_SESSION_KEY] = session_auth_hash
            else:
                session.flush()
                user = None
    return user or AnonymousUser()


def _load_sessions(sessions: Sequence[SessionBase]) -> None:
    """
    Load the sessions the database engines keep: from the cache, then the database.

    As ``SessionStore.load()`` would one by one, in one ``get_many()`` per
    cache (``cached_db``) and one query per session model: a session found
    in the database only is cached again, one that is missing or expired is
    empty and loses its key. Sessions of other engines (and any already
    loaded) are left to load themselves when read.
    """
    cached: list[CachedStore] = []
    stored: list[DatabaseStore] = []
    for session in sessions:
        if hasattr(session, "_session_cache") or session.session_key is None:
            continue
        if isinstance(session, CachedStore) and _loads_as(session, CachedStore):
            cached.append(session)
        elif isinstance(session, DatabaseStore) and _loads_as(session, DatabaseStore):
            stored.append(session)
    _load_from_database([*stored, *_load_from_cache(cached)])


def _loads_as(session: SessionBase, engine: type[DatabaseStore]) -> bool:
    # The engine's own loading, not a subclass's of its own (which a batch would skip).
    kind: Any = type(session)
    return kind.load is engine.load and (
        kind._get_session_from_db is cast(Any, DatabaseStore)._get_session_from_db
    )


# Django's sessions keep what they loaded, and the cache of cached_db, in private
# attributes, which its type stubs do not declare: set and read as load() does.


def _loaded(session: SessionBase, data: dict[str, Any]) -> None:
    cast(Any, session)._session_cache = data


def _cache_of(session: CachedStore) -> Any:
    return cast(Any, session)._cache


def _load_from_cache(sessions: Sequence[CachedStore]) -> list[CachedStore]:
    """Load ``sessions`` from their caches; return those the cache does not hold."""
    by_cache: dict[int, list[CachedStore]] = {}
    for session in sessions:
        by_cache.setdefault(id(_cache_of(session)), []).append(session)
    missed: list[CachedStore] = []
    for group in by_cache.values():
        try:
            found = _cache_of(group[0]).get_many([session.cache_key for session in group])
        except Exception:
            # As CachedStore.load(): a cache that refuses the keys is a miss.
            found = {}
        for session in group:
            data = found.get(session.cache_key)
            if data is None:
                missed.append(session)
            else:
                _loaded(session, data)
    return missed


def _load_from_database(sessions: Sequence[DatabaseStore]) -> None:
    """Load ``sessions`` from the database, one query per session model."""
    by_model: dict[Any, dict[str, list[DatabaseStore]]] = {}
    for session in sessions:
        keys = by_model.setdefault(session.get_model_class(), {})
        keys.setdefault(cast(str, session.session_key), []).append(session)
    now = timezone.now()
    for model, keys in by_model.items():
        rows = model.objects.filter(session_key__in=list(keys), expire_date__gt=now)
        found = {row.session_key: row for row in rows}
        for key, stores in keys.items():
            row = found.get(key)
            for store in stores:
                if row is None:
                    store._session_key = None
                    _loaded(store, {})
                    continue
                data = store.decode(row.session_data)
                _loaded(store, data)
                if isinstance(store, CachedStore):
                    expiry = store.get_expiry_age(expiry=row.expire_date)
                    _cache_of(store).set(store.cache_key, data, expiry)
