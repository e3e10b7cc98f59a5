"""
The name of every Redis key the store writes, for Python and for the scripts.

Name keys here and nowhere else: ``Keys`` builds them in Python, and ``LUA``
defines the same helpers for the scripts (``scripts`` puts it at the head of
every one), so a new kind of key, or a new layout, is one change in one file.

Users are hashed into ``GROUPS`` slot groups. Every key of a group carries the
hash tag ``{g<n>}``: a user's sorted sets, their entries, the group's copy of
each content they received and the group's indexes. Redis Cluster keeps keys
with the same tag in one hash slot, so a script that works for one user, or
for a chunk of a send's recipients in one group, touches one slot, and the
same layout serves a single Redis. Only the id counters and the layout stamp
live outside the groups: ids are reserved in a call of their own.
"""

from __future__ import annotations

import zlib
from typing import Any

__all__ = ["GROUPS", "LAYOUT", "LUA", "Keys"]

#: Slot groups users are spread over. Enough for a cluster's primaries to
#: share them evenly; few enough that the jobs walking every group (purge,
#: digests) stay a handful of pipelined round trips. Changing it moves every
#: user to another group, so the layout stamp records it.
GROUPS = 64

#: The layout's version and group count, stamped at ``Keys.layout`` on first
#: use; a store whose stamp differs refuses to run rather than lose data.
#: Version 4 queues a send's entries without a hash for the digests as one
#: member per part (``unmailed_parts``); version 3 had one per entry in
#: ``unmailed``. Version 3 keeps each entry in one of its user's ``unread``,
#: ``read`` and ``archived`` sets; version 2 kept an ``all`` set beside ``unread``.
LAYOUT = f"4:{GROUPS}"


def group_of(user_id: Any) -> int:
    """Return the user's slot group: CRC-32 of the id as the scripts see it, modulo ``GROUPS``."""
    return zlib.crc32(str(user_id).encode()) % GROUPS


class Keys:
    """The key names of one key prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def group(self, group: int) -> str:
        """
        The base name of a slot group's keys: the first key every group script
        declares, which routes it on a cluster; the script names the rest.
        """
        return f"{self.prefix}:{{g{group}}}"

    def of(self, user_id: Any) -> str:
        """The base name of the user's slot group."""
        return self.group(group_of(user_id))

    def user(self, user_id: Any, name: str) -> str:
        """
        One of a user's keys: the sorted sets ``unread``, ``read`` (read, not
        archived) and ``archived``, which hold each entry in one of them,
        ``unread_exp``, ``seen`` and ``saved``, the hashes ``v`` (change
        counter) and ``threads`` (thread key to row id), the set ``muted``,
        and the flag ``noted`` (an empty unread listing since the last add).
        """
        return f"{self.of(user_id)}:u:{user_id}:{name}"

    def history(self, user_id: Any, thread: str) -> str:
        """The sorted set of every entry of one thread the user holds, the row included."""
        return self.user(user_id, f"h:{thread}")

    def entry(self, group: int, entry_id: Any) -> str:
        """An entry's hash, in its user's group."""
        return f"{self.group(group)}:e:{entry_id}"

    def content(self, group: int, message_id: Any) -> str:
        """The group's copy of a content."""
        return f"{self.group(group)}:m:{message_id}"

    def index(self, group: int, name: str) -> str:
        """
        One of a group's indexes: ``read``, ``expiring``, ``unmailed``,
        ``orphans``, ``sending``, ``ranges``, the parts of sends whose
        entries have no hash (their users are listed under ``part()``), and
        ``unmailed_parts``, those parts in the digest queue (``first:count``).
        """
        return f"{self.group(group)}:{name}"

    def part(self, group: int, first: Any) -> str:
        """The users of a send's part whose entry ids start at ``first``, in id order."""
        return f"{self.group(group)}:ru:{first}"

    def counter(self, name: str) -> str:
        """An id counter, ``message`` or ``entry``; both share the ``{ids}`` slot."""
        return f"{self.prefix}:{{ids}}:{name}"

    @property
    def layout(self) -> str:
        """The layout stamp (see ``LAYOUT``)."""
        return f"{self.prefix}:{{ids}}:layout"

    def legacy(self) -> list[str]:
        """The id counters of the first layout, whose keys no group held."""
        return [f"{self.prefix}:ids:message", f"{self.prefix}:ids:entry"]


#: The same names for the scripts, which get the group's base name as KEYS[1].
LUA = """\
local G = KEYS[1]
local function ukey(uid, name) return G .. ':u:' .. uid .. ':' .. name end
local function hkey(uid, thread) return ukey(uid, 'h:' .. thread) end
local function ekey(id) return G .. ':e:' .. id end
local function mkey(id) return G .. ':m:' .. id end
local function gkey(name) return G .. ':' .. name end
local function pkey(first) return G .. ':ru:' .. first end
"""
