"""
A throwaway Redis Cluster of three primaries, for the tests that need one.

``cluster`` starts it once per test session (three ``redis-server`` processes on
spare ports, joined by ``redis-cli --cluster create``) and kills them by PID at
the end. It runs on the SQLite run only, as the browser tests do: what it checks
does not depend on the database, and CI runs the suite once per database.
"""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest
import redis
from redis.cluster import RedisCluster

from .redis_support import RedisServer, free_port

__all__ = ["ClusterNodes", "cluster"]


class ClusterNodes:
    """Three cluster-enabled ``redis-server`` processes, without persistence, as one cluster."""

    size = 3

    def __init__(self, directory) -> None:
        self.cli = shutil.which("redis-cli")
        if self.cli is None:
            pytest.skip("redis-cli is not installed")
        self.nodes = [RedisServer() for _ in range(self.size)]
        for node in self.nodes:
            node.args = [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                str(directory / f"nodes-{node.port}.conf"),
                # The bus port defaults to port + 10000, past 65535 for a high spare port.
                "--cluster-port",
                str(free_port()),
            ]

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def start(self) -> ClusterNodes:
        try:
            for node in self.nodes:
                node.start()
            subprocess.run(
                [
                    self.cli,
                    "--cluster",
                    "create",
                    *(f"127.0.0.1:{node.port}" for node in self.nodes),
                    "--cluster-replicas",
                    "0",
                    "--cluster-yes",
                ],
                check=True,
                capture_output=True,
                timeout=60,
            )
            self._wait_until_ok()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_ok(self) -> None:
        """Poll every node until each says ``cluster_state:ok``; give up after 30 s."""
        deadline = time.monotonic() + 30
        for node in self.nodes:
            client = redis.Redis(port=node.port, decode_responses=True)
            try:
                while client.cluster("info").get("cluster_state") != "ok":
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"the cluster did not come up: node {node.port}")
                    time.sleep(0.05)
            finally:
                client.close()

    def client(self) -> RedisCluster:
        return RedisCluster.from_url(self.url, decode_responses=True)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    nodes = ClusterNodes(tmp_path_factory.mktemp("redis-cluster")).start()
    yield nodes
    nodes.stop()
