"""
The Redis store on a real Redis Cluster of three primaries.

Redis Cluster runs a script only when every key it declares lives in one hash
slot, and refuses it with ``CROSSSLOT`` otherwise; a script that reaches for a
key of another slot fails too. The layout keeps each slot group's keys in one
slot (``keys.py``), and here the whole backend contract and the model-checked
state machine run on the cluster, as on a single Redis.
"""

import uuid
from collections import Counter

import pytest
import redis
from django.db import connection

from pigeonhole.backends.base import Recipients
from pigeonhole.backends.redis import RedisBackend
from pigeonhole.backends.redis.keys import GROUPS, Keys
from pigeonhole.exceptions import BackendUnavailable

from .contract import BackendContract, InboxContract, new, texts
from .redis_cluster import cluster  # noqa: F401  (the session fixture)
from .redis_support import backends_made, check_indexes, keys_under
from .state_machine import make_state_machine, run_state_machine

pytestmark = pytest.mark.django_db

#: Touch every key it is given, as a script for one slot group would.
TOUCH = """
for i, key in ipairs(KEYS) do redis.call('ZADD', key .. ':probe', 1, 'x') end
return #KEYS
"""


@pytest.fixture
def nodes(request):
    if connection.vendor != "sqlite":
        pytest.skip("the Redis Cluster tests run on the SQLite run only, to keep CI short")
    return request.getfixturevalue("cluster")


@pytest.fixture
def client(nodes):
    client = nodes.client()
    yield client
    client.close()


def cluster_url(nodes) -> str:
    return f"redis+cluster://127.0.0.1:{nodes.nodes[0].port}"


def delete_keys(client, prefix: str) -> None:
    keys = keys_under(client, prefix)
    for start in range(0, len(keys), 1000):
        client.delete(*keys[start : start + 1000])


@pytest.fixture
def make_backend(nodes):
    """Build cluster backends with fresh prefixes; delete their keys afterwards."""
    yield from backends_made(cluster_url(nodes), "cluster")


@pytest.fixture
def checked_backend(make_backend):
    """A backend whose indexes are checked after the test."""
    backend = make_backend()
    yield backend
    check_indexes(backend)


class TestClusterBackend(BackendContract):
    @pytest.fixture
    def backend(self, checked_backend):
        return checked_backend


class TestClusterInbox(InboxContract):
    @pytest.fixture
    def backend(self, checked_backend):
        return checked_backend


class TestClusterInSmallBatches(BackendContract):
    """The contract again with tiny batches, so every scan, merge and fan-out loops."""

    @pytest.fixture
    def backend(self, checked_backend):
        checked_backend.scan_batch = 3
        checked_backend.deliveries_chunk = 2
        checked_backend.chunk_size = 2
        return checked_backend


def test_the_cluster_has_three_primaries_that_share_the_groups(client):
    primaries = [node for node in client.get_nodes() if node.server_type == "primary"]
    assert len(primaries) == 3
    keys = Keys("p")
    slots = {client.keyslot(keys.group(group)) for group in range(GROUPS)}
    owners = Counter(client.nodes_manager.get_node_from_slot(slot).name for slot in slots)
    assert len(owners) == 3 and min(owners.values()) >= GROUPS // 6


def test_every_key_of_a_group_is_in_one_slot_and_two_groups_are_refused(client):
    keys = Keys("pigeonhole-cluster-test")
    for uid in (1, 42, "a-uuid-4f6c"):
        group = keys.of(uid)
        names = [keys.user(uid, name) for name in ("unread", "read", "v", "h:t")]
        names += [f"{group}:e:7", f"{group}:m:3", f"{group}:unmailed"]
        assert {client.keyslot(name) for name in names} == {client.keyslot(group)}
        assert client.eval(TOUCH, len(names), *names) == len(names)
    one, two = keys.group(0), keys.group(1)
    assert client.keyslot(one) != client.keyslot(two)
    with pytest.raises(redis.RedisClusterException, match="slot"):
        client.eval(TOUCH, 2, one, two)


def test_a_send_reaches_users_on_every_primary(make_backend, django_user_model, client):
    backend = make_backend()
    users = [django_user_model.objects.create_user(f"spread{i}").pk for i in range(60)]
    nodes = {
        client.nodes_manager.get_node_from_slot(client.keyslot(backend.keys.of(pk))).name
        for pk in users
    }
    assert len(nodes) == 3
    backend.chunk_size = 7
    sent = backend.send(new("everywhere"), Recipients(ids=users))
    assert sent.recipient_count == 60
    assert {backend.count(pk) for pk in users} == {1}
    assert len(backend.unmailed_for_message(sent.id, limit=1000)) == 60
    check_indexes(backend)


def test_scripts_come_back_after_a_node_forgets_them(make_backend, client, uid):
    backend = make_backend()
    backend.add(new("before"), uid)
    client.script_flush()  # every primary forgets every script
    backend.add(new("after"), uid)
    assert texts(backend.claim_unread(uid)) == ["after", "before"]
    assert backend.purge() == {"expired": 0, "read": 0, "messages": 0}


def test_a_cluster_that_cannot_be_reached_raises_backend_unavailable(uid):
    backend = RedisBackend(
        url="redis+cluster://:s3cret@127.0.0.1:1", socket_connect_timeout=0.5, socket_timeout=0.5
    )
    with pytest.raises(BackendUnavailable, match=r"redis\+cluster://:\*\*\*@127.0.0.1:1") as caught:
        backend.count(uid)
    assert "s3cret" not in str(caught.value)


@pytest.fixture
def machine_users(django_user_model):
    return [django_user_model.objects.create_user(f"machine{i}").pk for i in range(3)]


def test_cluster_backend_agrees_with_the_model(nodes, client, machine_users):
    url, prefixes = cluster_url(nodes), []

    def factory():
        prefixes.append(f"sm-{uuid.uuid4().hex}")
        return RedisBackend(url=url, key_prefix=prefixes[-1])

    def cleanup(backend):
        delete_keys(client, prefixes[-1])
        backend.close()

    try:
        run_state_machine(make_state_machine(factory, machine_users, cleanup, name="Cluster"))
    finally:
        for prefix in prefixes:
            delete_keys(client, prefix)
