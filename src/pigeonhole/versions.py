"""
Inbox versions in a shared cache, so a page can skip the query for an empty inbox.

Most pages are seen by users with nothing unread, yet each would ask the store
to be sure. With ``PIGEONHOLE["CACHE"]`` naming a Django cache, every change
that can give a user something unread writes a new random token under that
user's key (or, for a send to a whole QuerySet or Group, under one key shared
by everyone, so a send costs one cache write however many receive it). The
storage notes in the session the tokens it saw before a listing came back
empty; while both tokens are unchanged, nothing can have arrived, and the
page needs no query.

Tokens are random, never counters: a key that the cache evicts or loses comes
back as a different token, so a lost key costs a query, never a hidden
message. Any cache error is logged and answered with "cannot tell".
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable

from django.core.cache import BaseCache, caches

from .conf import pigeonhole_settings

__all__ = ["EVERYONE", "bump", "get_cache", "read", "user_key"]

logger = logging.getLogger("pigeonhole")

#: Key of the token that every send to a QuerySet or Group, or to many ids, renews.
EVERYONE = "pigeonhole:v:*"
#: Seconds a token is kept. One that expires reads as missing and is renewed,
#: which only costs the next page its query.
TIMEOUT = 7 * 24 * 3600
#: Recipients up to which a send renews each one's token; above it, ``EVERYONE``.
PER_USER_LIMIT = 100


def user_key(user_id: object) -> str:
    return f"pigeonhole:v:u:{user_id}"


def get_cache() -> BaseCache | None:
    """
    Return the cache named by ``PIGEONHOLE["CACHE"]``, or None when it is off.

    An alias missing from ``CACHES`` raises here; check ``pigeonhole.E040`` reports it.
    """
    alias = pigeonhole_settings.CACHE
    return caches[alias] if alias else None


def _token() -> str:
    return secrets.token_hex(8)


def read(user_id: object) -> tuple[str, str] | None:
    """
    Return the user's token and the shared one, or None if the cache cannot tell.

    A missing token is created (``add`` only writes when the key is absent, so
    a concurrent bump wins) and read back: a hint taken on "no token yet" would
    stay true after a bump whose token the cache then evicts.
    """
    if pigeonhole_settings.CACHE is None:
        return None
    keys = [user_key(user_id), EVERYONE]
    try:
        cache = get_cache()
        if cache is None:
            return None
        found = cache.get_many(keys)
        if len(found) < len(keys):
            for key in keys:
                if key not in found:
                    cache.add(key, _token(), TIMEOUT)
            found = cache.get_many(keys)
    except Exception:  # any cache failure: fall back to asking the store
        logger.warning("Could not read inbox versions from the cache.", exc_info=True)
        return None
    if len(found) < len(keys):
        return None
    return found[keys[0]], found[EVERYONE]


def bump(user_ids: Iterable[object] = (), *, everyone: bool = False) -> None:
    """
    Renew the tokens of ``user_ids``, and the shared one with ``everyone``.

    Call it for anything that can make a user's unread messages appear or
    change outside pigeonhole's API (a data import, raw SQL); the API calls it
    itself. A failure is logged, not raised: the change it reports has happened.
    """
    if pigeonhole_settings.CACHE is None:
        return
    values = {user_key(uid): _token() for uid in user_ids}
    if everyone:
        values[EVERYONE] = _token()
    if not values:
        return
    try:
        cache = get_cache()
        if cache is None:
            return
        if len(values) == 1:  # the request path's case: one command, not a pipeline
            cache.set(*values.popitem(), TIMEOUT)
        else:
            cache.set_many(values, TIMEOUT)
    except Exception:
        logger.exception(
            "Could not renew inbox versions in the cache; pages may show new messages "
            "late, until the hint in each session expires."
        )
