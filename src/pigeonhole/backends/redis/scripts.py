"""
The Lua scripts, one file each in ``lua/``, read once per process.

Every change that touches more than one key runs as one script, so Redis
applies it whole or not at all. Each script is ``lua/preamble.lua`` (the key
helpers and the index bookkeeping they share) followed by its own file, which
starts with the ``ARGV`` it takes.
"""

from __future__ import annotations

import functools
from importlib.resources import files

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
    "counts",
    "change",
    "mark_all",
    "purge_expired",
    "purge_read",
    "forget_user",
    "unmailed_for_message",
    "unmailed_due",
    "claim_email",
    "release_email",
    "purge_orphans",
    "deliveries",
)


def _read(name: str) -> str:
    return files(__package__).joinpath("lua", f"{name}.lua").read_text(encoding="utf-8")


@functools.cache
def sources() -> dict[str, str]:
    """Return every script's full source by name: the preamble, then the script."""
    preamble = _read("preamble")
    return {name: f"{preamble}\n{_read(name)}" for name in NAMES}
