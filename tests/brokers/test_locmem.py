"""The in-process broker against the shared contract."""

import pytest

from pigeonhole.brokers.locmem import LocMemBroker

from .contract import BrokerContract


class TestLocMemBroker(BrokerContract):
    @pytest.fixture
    def make_broker(self):
        return LocMemBroker
