"""
A store written against the hooks alone keeps the whole contract.

``MemoryBackend`` (``memory.py``) renews no version, raises no refusal and
writes no error text: the public methods of ``BaseBackend`` do that for it.
"""

import pytest

from pigeonhole import versions
from pigeonhole.backends.base import BaseBackend, Recipients
from pigeonhole.exceptions import InvalidMessage, MessageNotFound

from .contract import BackendContract, InboxContract, new
from .memory import MemoryBackend

pytestmark = pytest.mark.django_db


class TestMemoryBackend(BackendContract, InboxContract):
    @pytest.fixture
    def backend(self):
        return MemoryBackend()


@pytest.fixture
def cache(settings):
    settings.CACHES = {
        **settings.CACHES,
        "pigeonhole-memory": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    }
    settings.PIGEONHOLE = {**settings.PIGEONHOLE, "CACHE": "pigeonhole-memory"}


@pytest.mark.usefixtures("cache")
@pytest.mark.parametrize("change", ["mark_unread", "unarchive"])
def test_changes_that_bring_back_unread_messages_renew_the_version(uid, change):
    backend = MemoryBackend()
    entry = backend.add(new("a"), uid)
    backend.mark_read(uid, [entry.id])
    backend.archive(uid, [entry.id])
    before = versions.read(uid)
    assert getattr(backend, change)(uid, [entry.id]) == [entry.id]
    assert versions.read(uid) != before
    # A change that changed nothing renews nothing.
    after = versions.read(uid)
    assert getattr(backend, change)(uid, [entry.id]) == []
    assert versions.read(uid) == after


@pytest.mark.usefixtures("cache")
def test_a_send_and_an_add_renew_the_version(users):
    backend = MemoryBackend()
    before = versions.read(users[0].pk)
    backend.add(new("a"), users[0].pk)
    assert versions.read(users[0].pk) != before
    before = versions.read(users[1].pk)
    backend.send(new("b"), Recipients(ids=[u.pk for u in users]))
    assert versions.read(users[1].pk) != before


def test_unread_deletion_and_foreign_ids_are_refused_with_the_shared_errors(users):
    backend = MemoryBackend()
    mine = backend.add(new("mine"), users[0].pk)
    theirs = backend.add(new("theirs"), users[1].pk)
    with pytest.raises(InvalidMessage, match=r"ALLOW_DELETE_UNREAD"):
        backend.delete(users[0].pk, [mine.id])
    with pytest.raises(InvalidMessage, match=r"ALLOW_DELETE_UNREAD"):
        backend.delete(users[0].pk, [mine.id, theirs.id], strict=False)
    with pytest.raises(MessageNotFound) as caught:
        backend.archive(users[0].pk, [mine.id, theirs.id])
    assert caught.value.ids == [theirs.id]
    assert backend.archive(users[0].pk, [mine.id, theirs.id], strict=False) == [mine.id]
    with pytest.raises(MessageNotFound):
        backend.get(users[0].pk, theirs.id)


def test_a_store_without_a_hook_says_which_one_it_lacks(uid):
    class Incomplete(BaseBackend):
        pass

    with pytest.raises(NotImplementedError, match=r"must provide a _change\(\) method"):
        Incomplete().mark_unread(uid, [1])
    with pytest.raises(NotImplementedError, match=r"must provide a _send\(\) method"):
        Incomplete().send(new("x"), Recipients())
