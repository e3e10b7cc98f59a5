"""
A model-checked state machine for any message backend.

Hypothesis drives random sequences of the contract's methods (``backends/base.py``)
against a real backend and, side by side, against ``InboxModel``: a few dozen
lines of plain Python that say what the contract means. After every step the
``agrees_with_the_model`` invariant compares, for every user, the unread count
and the ids, read and archived flags, texts and content ids that ``list()``
returns for each state. A failure prints the shortest sequence of calls that
makes the backend and the model disagree.

Nothing here knows which store it talks to: ``make_state_machine`` takes a
factory that builds a backend over an empty store and a ``cleanup`` that empties
it again, so each Hypothesis example starts from nothing. The test modules
(``test_state_machine.py``) plug in the database and Redis.

The example budget is small by default, for every CI run; set
``PIGEONHOLE_STATEFUL_EXAMPLES`` (``make statemachine``) for a long run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from pigeonhole.backends.base import STATES, Recipients
from pigeonhole.exceptions import InvalidMessage, MessageNotFound
from pigeonhole.message import NewMessage, StoredMessage

__all__ = ["InboxModel", "make_state_machine", "run_state_machine", "stateful_settings"]

#: Examples per backend unless ``PIGEONHOLE_STATEFUL_EXAMPLES`` asks for more: about
#: 7 s on SQLite, 14 s on PostgreSQL, 12 s on MariaDB, 2 s on Redis. The invariant's
#: fifteen reads after every step are nearly all of it.
DEFAULT_EXAMPLES = 25
STEPS_PER_EXAMPLE = 30
#: Far more than a run ever creates, so one ``list()`` call shows a whole inbox.
LIST_LIMIT = 1000
#: Ids no backend hands out (the database starts at 1; Redis counters too).
UNKNOWN_IDS = (0, -1, 2**31 - 1)
#: "Act as the owner of the first id", so that most calls are legitimate ones.
OWNER = "owner"
LEVELS = (21, 41)  # PERSISTENT_INFO, PERSISTENT_ERROR


def stateful_settings() -> settings:
    """The run's settings: ``PIGEONHOLE_STATEFUL_EXAMPLES`` raises the example count."""
    examples = int(os.environ.get("PIGEONHOLE_STATEFUL_EXAMPLES") or DEFAULT_EXAMPLES)
    # Everything else comes from the active profile: Hypothesis's own "ci" profile
    # (derandomized, no example database) when CI is set.
    return settings(
        max_examples=examples,
        stateful_step_count=STEPS_PER_EXAMPLE,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )


def run_state_machine(machine: type[RuleBasedStateMachine]) -> None:
    run_state_machine_as_test(machine, settings=stateful_settings())


# --------------------------------------------------------------------------- the model


# What a change needs to find in its first entry to change it.
def ANY(entry: ModelEntry) -> bool:
    return True


def UNREAD(entry: ModelEntry) -> bool:
    return not entry.read


def READ(entry: ModelEntry) -> bool:
    return entry.read


def ARCHIVED(entry: ModelEntry) -> bool:
    return entry.archived


def UNARCHIVED(entry: ModelEntry) -> bool:
    return not entry.archived


def SAVED(entry: ModelEntry) -> bool:
    return entry.saved


def UNSAVED(entry: ModelEntry) -> bool:
    return not entry.saved


@dataclass
class ModelEntry:
    id: Any
    user: int  # index into the machine's users
    text: str
    message_id: Any
    read: bool = False
    archived: bool = False
    expired: bool = False
    gone: bool = False  # deleted or purged
    thread: str | None = None
    folded: bool = False  # a newer entry of its thread is the user's row now
    seen: bool = False
    saved: bool = False
    count: int = 1


class InboxModel:
    """
    What the contract says the store holds, in plain Python.

    Entries are never forgotten (``gone`` marks deleted and purged ones), so the
    model can always say whose an old id was. ``messages`` maps each content id
    still held to the ids of its live entries; a content whose entries were all
    deleted stays until a purge collects it.
    """

    def __init__(self, users: int) -> None:
        self.users = users
        self.entries: dict[Any, ModelEntry] = {}
        self.messages: dict[Any, set[Any]] = {}
        self.mutes: set[tuple[int, str]] = set()

    # Reading ----------------------------------------------------------------
    def live(self) -> list[ModelEntry]:
        return [entry for entry in self.entries.values() if not entry.gone]

    def visible(self, user: int) -> list[ModelEntry]:
        return [e for e in self.live() if e.user == user and not e.expired and not e.folded]

    def is_visible(self, entry_id: Any, where: Callable[[ModelEntry], bool] = ANY) -> bool:
        entry = self.entries.get(entry_id)
        return (
            entry is not None
            and not entry.gone
            and not entry.expired
            and not entry.folded
            and where(entry)
        )

    def any_visible(self, where: Callable[[ModelEntry], bool] = ANY) -> bool:
        return any(not e.expired and not e.folded and where(e) for e in self.live())

    def row(self, user: int, thread: str) -> ModelEntry | None:
        """The user's current row of ``thread``, expired or not."""
        for entry in self.live():
            if entry.user == user and entry.thread == thread and not entry.folded:
                return entry
        return None

    def history(self, entry: ModelEntry) -> list[ModelEntry]:
        """The folded entries of the thread ``entry`` is the row of."""
        if entry.thread is None:
            return []
        return [
            e for e in self.live() if e.user == entry.user and e.thread == entry.thread and e.folded
        ]

    def visible_ids(self, user: int) -> set[Any]:
        return {entry.id for entry in self.visible(user)}

    def listing(self, user: int, state: str) -> list[ModelEntry]:
        keep = {
            "unread": lambda e: not e.read and not e.archived,
            "read": lambda e: e.read and not e.archived,
            "all": lambda e: not e.archived,
            "archived": lambda e: e.archived,
            "saved": lambda e: e.saved,
        }[state]
        return sorted((e for e in self.visible(user) if keep(e)), key=lambda e: e.id, reverse=True)

    def count(self, user: int) -> int:
        return len(self.listing(user, "unread"))

    def unseen(self, user: int) -> list[ModelEntry]:
        return [e for e in self.listing(user, "unread") if not e.seen]

    def missing(self, user: int, ids: Sequence[Any]) -> set[Any]:
        """The ids a strict call must refuse: unknown, someone else's, expired or gone."""
        return set(ids) - self.visible_ids(user)

    # Writing ----------------------------------------------------------------
    def add(self, entry: ModelEntry) -> None:
        """Add a new entry; in a thread it takes over the user's row, which folds."""
        if entry.thread is not None and (old := self.row(entry.user, entry.thread)):
            old.folded = True
            entry.count = 1 if old.read else old.count + 1
            entry.saved = old.saved
        self.entries[entry.id] = entry
        self.messages.setdefault(entry.message_id, set()).add(entry.id)

    def remove(self, entry: ModelEntry) -> None:
        entry.gone = True
        self.messages[entry.message_id].discard(entry.id)

    def purge(self, *, expired: bool, read: bool) -> tuple[list[ModelEntry], list[ModelEntry]]:
        """Return (expired, read) entries a purge removes; ``read`` means every read one."""
        rows = [e for e in self.live() if not e.folded and not e.saved]
        doomed_expired = [e for e in rows if e.expired] if expired else []
        doomed_read = [e for e in rows if read and e.read and not (expired and e.expired)]
        return doomed_expired, doomed_read

    def orphans_after(self, doomed: Sequence[ModelEntry]) -> tuple[set[Any], set[Any]]:
        """
        Return (contents a purge of ``doomed`` leaves entry-less, contents already so).

        The first must be collected by that purge. The contract leaves open when
        a content whose entries were all deleted goes (at once or at the next
        purge), so the second may or may not be counted.
        """
        gone = {entry.id for entry in doomed}
        gone |= {old.id for entry in doomed for old in self.history(entry)}
        pending = {mid for mid, ids in self.messages.items() if not ids}
        new = {mid for mid, ids in self.messages.items() if ids and ids <= gone}
        return new, pending


# --------------------------------------------------------------------------- the machine


def make_state_machine(
    backend_factory: Callable[[], Any],
    user_ids: Sequence[Any],
    cleanup: Callable[[Any], None] | None = None,
    *,
    name: str = "Backend",
    inbox: bool = True,
) -> type[RuleBasedStateMachine]:
    """
    Return a state machine class that checks one kind of backend against the model.

    ``backend_factory()`` returns a backend; ``cleanup(backend)`` empties its
    store, and runs before and after every example. ``user_ids`` are existing
    users' ids (a few: two or three give every cross-user case). ``inbox``
    adds threads, seen, saved and mute, for stores that keep them.
    """
    uids = tuple(user_ids)
    states = STATES if inbox else tuple(state for state in STATES if state != "saved")
    threads = st.sampled_from([None, None, "t1", "t2"]) if inbox else st.just(None)
    users = st.sampled_from(range(len(uids)))
    unknown_ids = st.sampled_from(UNKNOWN_IDS)
    User = get_user_model()

    running: list[RuleBasedStateMachine] = []  # the machine of the example under way
    entry_bundle = Bundle("entries")

    # A change of state takes a ``first`` id that it will change: one of the
    # entries that the model says are there, visible and in a state the change
    # moves it out of (``first=where(READ)`` for mark_unread), with a
    # precondition that one exists. Then up to three ``siblings``: the owner's newest other
    # visible entries, whatever their state; and a third of the time ``others``,
    # anyone's, stale or unknown ids. Three calls in four act as ``first``'s
    # owner, so that most go through and entries travel far through their states.
    def where(wanted: Callable[[ModelEntry], bool] = ANY):
        return entry_bundle.filter(lambda i: running[-1].model.is_visible(i, wanted))

    def exists(wanted: Callable[[ModelEntry], bool] = ANY):
        return precondition(lambda self: self.model.any_visible(wanted))

    class Machine(RuleBasedStateMachine):
        entries = entry_bundle

        siblings = st.integers(0, 3)
        others = st.one_of(  # empty two times in three
            st.just([]),
            st.just([]),
            st.lists(st.one_of(entries, unknown_ids), min_size=1, max_size=3),
        )
        acting = st.sampled_from([OWNER] * (3 * len(uids)) + list(range(len(uids))))

        def __init__(self) -> None:
            super().__init__()
            running[:] = [self]
            self.backend = backend_factory()
            self.cleanup = cleanup
            if cleanup is not None:
                cleanup(self.backend)
            self.model = InboxModel(len(uids))
            self.sent = 0
            self.highest_id: Any = None

        def teardown(self) -> None:
            if self.cleanup is not None:
                self.cleanup(self.backend)

        # Helpers --------------------------------------------------------------
        def ids(self, first: Any, siblings: int, others: Sequence[Any] = ()) -> list[Any]:
            """Return ``first``, its owner's ``siblings`` newest other visible ones, ``others``."""
            owner = self.model.entries[first].user
            mates = sorted(self.model.visible_ids(owner) - {first}, reverse=True)
            return [first, *mates[:siblings], *others]

        def who(self, acting: Any, ids: Sequence[Any]) -> int:
            """The user index a call acts as: ``OWNER`` is the first id's owner."""
            if acting == OWNER:
                first = self.model.entries.get(ids[0])
                return first.user if first is not None else 0
            return acting

        def text(self) -> str:
            self.sent += 1
            return f"message {self.sent}"

        def check_new_id(self, entry_id: Any, known: set[Any]) -> None:
            assert entry_id not in self.model.entries and entry_id not in known, (
                f"entry id {entry_id!r} was handed out before"
            )
            if self.highest_id is not None:
                assert entry_id > self.highest_id, (
                    f"entry id {entry_id!r} is not above {self.highest_id!r}: "
                    "ids must be ordered by arrival"
                )

        def strict(self, method: str, user: int, ids: list[Any], **kwargs: Any):
            """
            Call a strict change and check the all-or-nothing rule.

            Returns the backend's result, or None when it (rightly) refused.
            """
            missing = self.model.missing(user, ids)
            call = getattr(self.backend, method)
            if missing:
                try:
                    call(uids[user], ids, **kwargs)
                except MessageNotFound as exc:
                    assert set(exc.ids) == missing, (
                        f"{method}: MessageNotFound.ids is {exc.ids!r}, expected {missing!r}"
                    )
                    return None
                raise AssertionError(
                    f"{method}(user {user}, {ids!r}) accepted ids that are not the "
                    f"user's visible entries: {sorted(missing, key=str)!r}"
                )
            return call(uids[user], ids, **kwargs)

        def check_changed(self, method: str, result: Any, expected: set[Any]) -> None:
            assert isinstance(result, list), f"{method} returned {result!r}, not a list"
            assert sorted(result, key=str) == sorted(expected, key=str), (
                f"{method} returned {sorted(result, key=str)!r}; "
                f"the ids it changed are {sorted(expected, key=str)!r}"
            )

        # Sending --------------------------------------------------------------
        @rule(
            target=entries,
            to=st.lists(users, min_size=1, max_size=len(uids), unique=True),
            level=st.sampled_from(LEVELS),
            by_queryset=st.booleans(),
            thread=threads,
        )
        def send(self, to, level, by_queryset, thread):
            """In a thread, each recipient's new entry replaces their row; muted ones get none."""
            text = self.text()
            ids = [uids[i] for i in to]
            if by_queryset:
                recipients = Recipients(queryset=User._default_manager.filter(pk__in=ids))
            else:
                recipients = Recipients(ids=ids)
            new = NewMessage(level=level, message=text, thread=thread)
            sent = self.backend.send(new, recipients)
            muted = [user for user in to if (user, thread) in self.model.mutes]
            to = [user for user in to if user not in muted]
            assert sent.recipient_count == len(to), (
                f"send to {len(to)} users (and {len(muted)} who muted the thread) "
                f"reported recipient_count={sent.recipient_count}"
            )
            for user in muted:
                listed = self.backend.list(uids[user], state="all", limit=LIST_LIMIT)
                assert all(e.id in self.model.entries for e in listed), (
                    f"user {user} muted {thread!r} and still got an entry"
                )
            new_ids: list[Any] = []
            for user in to:
                fresh = [
                    e
                    for e in self.backend.list(uids[user], state="all", limit=LIST_LIMIT)
                    if e.id not in self.model.entries
                ]
                assert [str(e) for e in fresh] == [text], (
                    f"after send, user {user} has new entries {fresh!r}, expected one {text!r}"
                )
                [entry] = fresh
                assert entry.message_id == sent.id, (
                    f"entry {entry.id!r} points at content {entry.message_id!r}, "
                    f"send() returned content {sent.id!r}"
                )
                self.check_new_id(entry.id, set(new_ids))
                new_ids.append(entry.id)
            for user, entry_id in zip(to, new_ids, strict=True):
                self.model.add(ModelEntry(entry_id, user, text, sent.id, thread=thread))
            if not new_ids:
                # Everyone muted the thread: the content stays until a purge.
                self.model.messages.setdefault(sent.id, set())
                return multiple()
            self.highest_id = max(new_ids)  # each was checked to be above the old one
            return multiple(*new_ids)

        @rule(target=entries, user=users, level=st.sampled_from(LEVELS), thread=threads)
        def add(self, user, level, thread):
            text = self.text()
            new = NewMessage(level=level, message=text, thread=thread)
            stored = self.backend.add(new, uids[user])
            if (user, thread) in self.model.mutes:
                assert stored is None, f"add() to a muted thread returned {stored!r}"
                return multiple()
            assert isinstance(stored, StoredMessage), f"add() returned {stored!r}"
            assert (str(stored), stored.level, stored.is_read) == (text, level, False)
            self.check_new_id(stored.id, set())
            self.model.add(ModelEntry(stored.id, user, text, stored.message_id, thread=thread))
            self.highest_id = stored.id
            return stored.id

        # Reading --------------------------------------------------------------
        @precondition(lambda self: self.model.entries)
        @rule(entry_id=st.one_of(entries, unknown_ids), acting=acting)
        def get(self, entry_id, acting):
            user = self.who(acting, [entry_id])
            if entry_id in self.model.visible_ids(user):
                stored = self.backend.get(uids[user], entry_id)
                expected = self.model.entries[entry_id]
                assert (stored.id, str(stored), stored.is_read, stored.is_archived) == (
                    entry_id,
                    expected.text,
                    expected.read,
                    expected.archived,
                )
            else:
                try:
                    stored = self.backend.get(uids[user], entry_id)
                except MessageNotFound:
                    return
                raise AssertionError(f"get(user {user}, {entry_id!r}) returned {stored!r}")

        @precondition(lambda self: self.model.live())
        @rule(user=users, state=st.sampled_from(states), limit=st.integers(1, 4))
        def page_through(self, user, state, limit):
            """Keyset paging by ``after`` walks the listing once, in order."""
            seen, after = [], None
            while page := self.backend.list(uids[user], state=state, limit=limit, after=after):
                assert len(page) <= limit
                seen += [entry.id for entry in page]
                after = page[-1].id
                assert len(seen) <= LIST_LIMIT, "paging does not end"
            assert seen == [e.id for e in self.model.listing(user, state)]

        # Changing state -------------------------------------------------------
        @exists(UNREAD)
        @rule(
            first=where(UNREAD),
            siblings=siblings,
            others=others,
            acting=acting,
            strict=st.booleans(),
        )
        def mark_read(self, first, siblings, others, acting, strict):
            """``strict=False`` (the request path) skips ids that are not the user's."""
            ids = self.ids(first, siblings, others)
            user = self.who(acting, ids)
            if strict:
                result = self.strict("mark_read", user, ids)
                if result is None:
                    return
                mine = [self.model.entries[i] for i in set(ids)]
            else:
                result = self.backend.mark_read(uids[user], ids, strict=False)
                mine = [self.model.entries[i] for i in set(ids) & self.model.visible_ids(user)]
            self.check_changed(
                f"mark_read(strict={strict})", result, {e.id for e in mine if not e.read}
            )
            for entry in mine:
                entry.read = True

        @exists(READ)
        @rule(first=where(READ), siblings=siblings, others=others, acting=acting)
        def mark_unread(self, first, siblings, others, acting):
            ids = self.ids(first, siblings, others)
            user = self.who(acting, ids)
            result = self.strict("mark_unread", user, ids)
            if result is not None:
                entries = [self.model.entries[i] for i in set(ids)]
                self.check_changed("mark_unread", result, {e.id for e in entries if e.read})
                for entry in entries:
                    entry.read = False

        @precondition(lambda self: self.model.live())
        @rule(user=users, watermark=st.sampled_from([None, "now"]))
        def mark_all_read(self, user, watermark):
            """No watermark, or a datetime one (now): every unread, unarchived entry."""
            before = timezone.now() if watermark == "now" else None
            result = self.backend.mark_all_read(uids[user], before=before)
            self.mark_all_read_upto(user, result, lambda entry: True)

        @rule(watermark=entries, acting=acting)
        def mark_all_read_before_id(self, watermark, acting):
            """An entry id watermark is inclusive; later entries stay unread."""
            user = self.who(acting, [watermark])
            result = self.backend.mark_all_read(uids[user], before=watermark)
            self.mark_all_read_upto(user, result, lambda entry: entry.id <= watermark)

        def mark_all_read_upto(self, user: int, result: Any, upto: Callable) -> None:
            doomed = [e for e in self.model.listing(user, "unread") if upto(e)]
            self.check_changed("mark_all_read", result, {e.id for e in doomed})
            for entry in doomed:
                entry.read = True

        @exists(UNARCHIVED)
        @rule(first=where(UNARCHIVED), siblings=siblings, others=others, acting=acting)
        def archive(self, first, siblings, others, acting):
            ids = self.ids(first, siblings, others)
            user = self.who(acting, ids)
            result = self.strict("archive", user, ids)
            if result is not None:
                entries = [self.model.entries[i] for i in set(ids)]
                self.check_changed("archive", result, {e.id for e in entries if not e.archived})
                for entry in entries:
                    entry.archived = True

        @exists(ARCHIVED)
        @rule(first=where(ARCHIVED), siblings=siblings, others=others, acting=acting)
        def unarchive(self, first, siblings, others, acting):
            ids = self.ids(first, siblings, others)
            user = self.who(acting, ids)
            result = self.strict("unarchive", user, ids)
            if result is not None:
                entries = [self.model.entries[i] for i in set(ids)]
                self.check_changed("unarchive", result, {e.id for e in entries if e.archived})
                for entry in entries:
                    entry.archived = False

        @exists()
        @rule(
            first=where(),
            siblings=siblings,
            others=others,
            acting=acting,
            allow_unread=st.booleans(),
        )
        def delete(self, first, siblings, others, acting, allow_unread):
            ids = self.ids(first, siblings, others)
            user = self.who(acting, ids)
            missing = self.model.missing(user, ids)
            entries = [self.model.entries[i] for i in set(ids) - missing]
            unread = {e.id for e in entries if not e.read}
            saved = {e.id for e in entries if e.saved}
            if (unread and not allow_unread) or saved:
                # Either refusal is right when both apply; which comes first is open.
                try:
                    self.backend.delete(uids[user], ids)
                except InvalidMessage:
                    return
                except MessageNotFound as exc:
                    assert missing, f"delete raised {exc!r} though every id is the user's"
                    assert set(exc.ids) == missing
                    return
                raise AssertionError(
                    f"delete(user {user}, {ids!r}) deleted unread {sorted(unread)!r} "
                    f"without allow_unread, or saved {sorted(saved)!r}"
                )
            result = self.strict("delete", user, ids, allow_unread=allow_unread)
            if result is not None:
                self.check_changed("delete", result, {e.id for e in entries})
                for entry in entries:
                    for old in self.model.history(entry):
                        self.model.remove(old)  # a thread's history goes with its row
                    self.model.remove(entry)

        # Seen, saved, muted ---------------------------------------------------
        @precondition(lambda self: inbox and self.model.live())
        @rule(user=users, watermark=st.sampled_from([None, "now"]))
        def mark_seen(self, user, watermark):
            before = timezone.now() if watermark == "now" else None
            self.mark_seen_upto(user, self.backend.mark_seen(uids[user], before=before), ANY)

        @precondition(lambda self: inbox)
        @rule(watermark=entries, acting=acting)
        def mark_seen_before_id(self, watermark, acting):
            user = self.who(acting, [watermark])
            result = self.backend.mark_seen(uids[user], before=watermark)
            self.mark_seen_upto(user, result, lambda entry: entry.id <= watermark)

        def mark_seen_upto(self, user: int, result: Any, upto: Callable) -> None:
            doomed = [e for e in self.model.unseen(user) if upto(e)]
            self.check_changed("mark_seen", result, {e.id for e in doomed})
            for entry in doomed:
                entry.seen = True

        @precondition(lambda self: inbox and self.model.any_visible(UNSAVED))
        @rule(first=where(UNSAVED), siblings=siblings, others=others, acting=acting)
        def save(self, first, siblings, others, acting):
            self.set_saved("save", first, siblings, others, acting, True)

        @precondition(lambda self: inbox and self.model.any_visible(SAVED))
        @rule(first=where(SAVED), siblings=siblings, others=others, acting=acting)
        def unsave(self, first, siblings, others, acting):
            self.set_saved("unsave", first, siblings, others, acting, False)

        def set_saved(self, method, first, siblings, others, acting, saved: bool) -> None:
            ids = self.ids(first, siblings, others)
            user = self.who(acting, ids)
            result = self.strict(method, user, ids)
            if result is not None:
                entries = [self.model.entries[i] for i in set(ids)]
                self.check_changed(method, result, {e.id for e in entries if e.saved != saved})
                for entry in entries:
                    entry.saved = saved

        @precondition(lambda self: inbox)
        @rule(user=users, thread=st.sampled_from(["t1", "t2"]), muted=st.booleans())
        def mute(self, user, thread, muted):
            call = self.backend.mute if muted else self.backend.unmute
            changed = call(uids[user], thread)
            assert changed == (((user, thread) in self.model.mutes) != muted), (
                f"{'mute' if muted else 'unmute'}(user {user}, {thread!r}) returned {changed!r}"
            )
            (self.model.mutes.add if muted else self.model.mutes.discard)((user, thread))

        # Housekeeping ---------------------------------------------------------
        @exists()
        @rule(first=where(), siblings=siblings)
        def expire(self, first, siblings):
            """Expire some of one user's visible entries now: they vanish at once."""
            owner = self.model.entries[first].user
            ids = self.ids(first, siblings)  # all the owner's and visible
            result = self.backend.expire(uids[owner], ids)
            self.check_changed("expire", result, set(ids))
            for entry_id in ids:
                self.model.entries[entry_id].expired = True

        @rule(user=users)
        def forget_user(self, user):
            """Forget one user: every entry goes, expired ones too; others keep theirs."""
            doomed = [e for e in self.model.live() if e.user == user]
            removed = self.backend.forget_user(uids[user])
            assert removed == len(doomed), (
                f"forget_user(user {user}) removed {removed} entries; the model holds {len(doomed)}"
            )
            for entry in doomed:
                self.model.remove(entry)

        def expected_purge(self, expired: bool, read_before: str | None):
            doomed_expired, doomed_read = self.model.purge(
                expired=expired, read=read_before == "future"
            )
            new, pending = self.model.orphans_after(doomed_expired + doomed_read)
            return doomed_expired, doomed_read, new, pending

        def check_purge_counts(self, counts, expected, label: str) -> None:
            doomed_expired, doomed_read, new, pending = expected
            assert (counts["expired"], counts["read"]) == (len(doomed_expired), len(doomed_read)), (
                f"{label} counted {counts!r}; expected {len(doomed_expired)} expired and "
                f"{len(doomed_read)} read entries"
            )
            assert len(new) <= counts["messages"] <= len(new) + len(pending), (
                f"{label} counted {counts['messages']} messages; {len(new)} lost their last "
                f"entry in this purge and {len(pending)} had none before"
            )

        @staticmethod
        def read_before(choice: str | None):
            if choice is None:
                return None
            delta = timedelta(seconds=1) if choice == "future" else -timedelta(days=1)
            return timezone.now() + delta

        @precondition(lambda self: self.model.messages)
        @rule(
            expired=st.booleans(),
            read_before=st.sampled_from([None, "past", "future"]),
            dry_run=st.booleans(),
        )
        def purge(self, expired, read_before, dry_run):
            """
            ``future`` removes every read entry, ``past`` (a day ago) none.

            A dry run counts the same and changes nothing (the invariant checks that).
            """
            expected = self.expected_purge(expired, read_before)
            counts = self.backend.purge(
                expired=expired, read_before=self.read_before(read_before), dry_run=dry_run
            )
            self.check_purge_counts(counts, expected, f"purge(dry_run={dry_run})")
            if dry_run:
                return
            doomed_expired, doomed_read, _, _ = expected
            for entry in doomed_expired + doomed_read:
                for old in self.model.history(entry):
                    self.model.remove(old)
                self.model.remove(entry)
            self.model.messages = {mid: ids for mid, ids in self.model.messages.items() if ids}

        # The check ------------------------------------------------------------
        @invariant()
        def agrees_with_the_model(self):
            for user, uid in enumerate(uids):
                count = self.backend.count(uid)
                assert count == self.model.count(user), (
                    f"count(user {user}) is {count}, the model says {self.model.count(user)}"
                )
                if inbox:
                    unseen = self.backend.unseen_count(uid)
                    assert unseen == len(self.model.unseen(user)), (
                        f"unseen_count(user {user}) is {unseen}, "
                        f"the model says {len(self.model.unseen(user))}"
                    )
                for state in states:
                    listed = self.backend.list(uid, state=state, limit=LIST_LIMIT)
                    got = [(e.id, e.is_read, e.is_archived, str(e), e.message_id) for e in listed]
                    want = [
                        (e.id, e.read, e.archived, e.text, e.message_id)
                        for e in self.model.listing(user, state)
                    ]
                    assert got == want, (
                        f"list(user {user}, state={state!r}) disagrees with the model\n"
                        f"  backend (id, read, archived, text, message_id): {got}\n"
                        f"  model:                                          {want}"
                    )
                    if inbox:
                        got = [(e.id, e.seen, e.is_saved, e.count) for e in listed]
                        want = [
                            (e.id, e.seen or e.read, e.saved, e.count)
                            for e in self.model.listing(user, state)
                        ]
                        assert got == want, (
                            f"list(user {user}, state={state!r}) disagrees with the model\n"
                            f"  backend (id, seen, saved, count): {got}\n"
                            f"  model:                            {want}"
                        )

    Machine.__name__ = Machine.__qualname__ = f"{name}StateMachine"
    return Machine
