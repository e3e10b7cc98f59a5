"""The database backend against the shared contract, on whichever database the run uses."""

import pytest

from pigeonhole.backends.db import DatabaseBackend

from .contract import BackendContract

pytestmark = pytest.mark.django_db


class TestDatabaseBackend(BackendContract):
    @pytest.fixture
    def backend(self):
        return DatabaseBackend()

    def test_small_batches_still_reach_everyone(self, users):
        backend = DatabaseBackend()
        backend.batch_size = 2
        from pigeonhole.backends.base import Recipients

        from .contract import new

        sent = backend.send(new("batched"), Recipients(ids=[u.pk for u in users]))
        assert sent.recipient_count == 3
        assert all(backend.count(u.pk) == 1 for u in users)
