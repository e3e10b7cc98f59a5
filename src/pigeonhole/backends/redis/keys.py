"""
The name of every Redis key the store writes, for Python and for the scripts.

Name keys here and nowhere else: ``Keys`` builds them in Python, and ``LUA``
defines the same helpers for the scripts (``scripts`` puts it at the head of
every one), so a new kind of key, or a new layout, is one change in one file.

Every key of one user carries the hash tag ``{u:<user id>}``: Redis Cluster
puts keys with the same tag in the same hash slot, so a script that touches one
user's keys touches one slot. Contents, entries and the shared indexes are
named by the other helpers.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LUA", "Keys"]


class Keys:
    """The key names of one key prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def user(self, user_id: Any, name: str) -> str:
        """
        One of a user's keys: the sorted sets ``all``, ``unread``, ``archived``,
        ``unread_exp``, ``seen`` and ``saved``, the hashes ``v`` (change
        counter) and ``threads`` (thread key to row id), the set ``muted``,
        and the flag ``noted`` (an empty unread listing since the last add).
        """
        return f"{self.prefix}:{{u:{user_id}}}:{name}"

    def history(self, user_id: Any, thread: str) -> str:
        """The sorted set of every entry of one thread the user holds, the row included."""
        return self.user(user_id, f"h:{thread}")

    def entry(self, entry_id: Any) -> str:
        """An entry's hash."""
        return f"{self.prefix}:e:{entry_id}"

    def content(self, message_id: Any) -> str:
        """A content's hash."""
        return f"{self.prefix}:m:{message_id}"

    def shared(self, name: str) -> str:
        """
        A key every user shares: the id counters (``ids:message``, ``ids:entry``)
        and the indexes ``read``, ``expiring``, ``unmailed``, ``orphans``, ``sending``.
        """
        return f"{self.prefix}:{name}"


#: The same names for the scripts, whose first argument is the key prefix.
LUA = """\
local P = ARGV[1]
local function ukey(uid, name) return P .. ':{u:' .. uid .. '}:' .. name end
local function hkey(uid, thread) return ukey(uid, 'h:' .. thread) end
local function ekey(id) return P .. ':e:' .. id end
local function mkey(id) return P .. ':m:' .. id end
local function gkey(name) return P .. ':' .. name end
"""
