"""
The Lua scripts, one file each in ``lua/``, read once per process.

Every change that touches more than one key runs as one script, so Redis
applies it whole or not at all. Each script is the key helpers of ``keys``,
``lua/preamble.lua`` (the index bookkeeping they share), then its own file,
which starts with the ``ARGV`` it takes.
"""

from __future__ import annotations

import functools
from importlib.resources import files

from .encoding import ENTRY_FIELDS
from .keys import LUA as KEYS

__all__ = ["NAMES", "sources"]

NAMES = (
    "reserve",
    "add",
    "create",
    "fanout",
    "finish",
    "withdraw",
    "drop_message",
    "list",
    "get",
    "state",
    "count",
    "counts",
    "change",
    "mark_all",
    "purge_expired",
    "purge_read",
    "forget_user",
    "unmailed_for_message",
    "unmailed_after",
    "unmailed_due",
    "claim_email",
    "release_email",
    "purge_orphans",
    "deliveries",
    "unseen",
    "mute",
    "muted",
    "export",
    "replaced",
)

#: The entry fields every script reads, in ``ENTRY_FIELDS`` order, so that
#: ``decode_entry()`` and the scripts never disagree on the order.
FIELDS = f"local ENTRY_FIELDS = {{{', '.join(repr(name) for name in ENTRY_FIELDS)}}}\n"


def _read(name: str) -> str:
    return files(__package__).joinpath("lua", f"{name}.lua").read_text(encoding="utf-8")


@functools.cache
def sources() -> dict[str, str]:
    """Return every script's full source by name: key helpers, preamble, then the script."""
    preamble = _read("preamble")
    return {name: f"{KEYS}{FIELDS}{preamble}\n{_read(name)}" for name in NAMES}
