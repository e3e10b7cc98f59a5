"""
The Redis store's key layout on a real Redis Cluster of three primaries.

Redis Cluster runs a script only when every key it declares lives in one hash
slot, and refuses it with ``CROSSSLOT`` otherwise: these tests declare keys the
way a script for one user would.
"""

import pytest
import redis
from django.db import connection

from pigeonhole.backends.redis.keys import Keys

from .redis_cluster import cluster  # noqa: F401  (the session fixture)

pytestmark = pytest.mark.django_db

USER_KEYS = ("all", "unread", "archived", "unread_exp", "v")

#: Touch every key it is given, as a script for one user's inbox would.
TOUCH = """
for i, key in ipairs(KEYS) do redis.call('ZADD', key .. ':probe', 1, 'x') end
return #KEYS
"""


@pytest.fixture
def client(request):
    if connection.vendor != "sqlite":
        pytest.skip("the Redis Cluster tests run on the SQLite run only, to keep CI short")
    nodes = request.getfixturevalue("cluster")
    client = nodes.client()
    yield client
    client.close()


def test_the_cluster_has_three_primaries_that_split_the_slots(client):
    primaries = [node for node in client.get_nodes() if node.server_type == "primary"]
    assert len(primaries) == 3
    slots = {client.keyslot(Keys("p").user(uid, "all")) for uid in range(200)}
    assert len({client.nodes_manager.get_node_from_slot(slot).name for slot in slots}) == 3


def test_a_script_may_touch_every_key_of_one_user(client):
    keys = Keys("pigeonhole-cluster-test")
    for uid in (1, 42, "a-uuid-4f6c"):
        names = [keys.user(uid, name) for name in USER_KEYS]
        assert client.eval(TOUCH, len(names), *names) == len(names)


def test_keys_of_two_users_are_refused_as_cross_slot(client):
    keys = Keys("pigeonhole-cluster-test")
    one, two = keys.user(1, "all"), keys.user(2, "all")
    assert client.keyslot(one) != client.keyslot(two)
    with pytest.raises(redis.RedisClusterException, match="slot"):
        client.eval(TOUCH, 2, one, two)
