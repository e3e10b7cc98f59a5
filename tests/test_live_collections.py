"""A broadcast and the garbage collector: no collection while its streams write, one after."""

import asyncio
import gc

import pytest

from pigeonhole.live import FreezePolicy, collect_soon, hold_collections


@pytest.fixture
def collector():
    """Leave the collector as the test found it: enabled, and nothing frozen by the test."""
    frozen = gc.get_freeze_count()
    yield
    gc.enable()
    if gc.get_freeze_count() != frozen:
        gc.unfreeze()


def test_a_broadcast_holds_collections_until_its_streams_have_run(collector):
    order = []

    async def broadcast():
        assert hold_collections(FreezePolicy.FIRST)
        assert not gc.isenabled()
        loop = asyncio.get_running_loop()
        # Woken streams run in the next iteration, ahead of the collection.
        loop.call_soon(lambda: order.append(("stream", gc.isenabled())))
        collect_soon()
        loop.call_soon(lambda: order.append(("after", gc.isenabled())))
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    frozen = gc.get_freeze_count()
    asyncio.run(broadcast())
    assert order == [("stream", False), ("after", True)]
    assert gc.get_freeze_count() > frozen  # what the streams keep is left out from now on


def test_a_message_to_a_few_streams_leaves_collections_alone(collector):
    assert not hold_collections(FreezePolicy.FIRST - 1)
    assert gc.isenabled()


def test_a_site_that_disabled_the_collector_keeps_it_disabled(collector):
    gc.disable()
    assert not hold_collections(10 * FreezePolicy.FIRST)
    assert not gc.isenabled()


def test_without_a_loop_the_collection_runs_at_once(collector):
    assert hold_collections(FreezePolicy.FIRST)
    collect_soon()
    assert gc.isenabled()
