"""A real local Redis Cluster for tests: `local_cluster(tmp_dir)` and the `redis_cluster`
session fixture (tests/conftest.py) built on it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import redis

from stack.servers.redis_cluster import LocalCluster, NodeInfo, start_local_cluster

# Shorter than the launcher's 2 s: a failover in a test then takes about 2 s instead of 4.
TEST_NODE_TIMEOUT_MS = 1000


@dataclass
class ClusterUnderTest:
    """A running local cluster: its seed URL, its nodes, and node-level kill/restart."""

    cluster: LocalCluster

    @property
    def url(self) -> str:
        return self.cluster.url

    @property
    def nodes(self) -> list[NodeInfo]:
        """(port, role, pid) of every node, asked of the nodes now (roles move on failover)."""
        return self.cluster.nodes()

    def kill(self, port: int) -> None:
        """SIGKILL the node on `port` and wait until it is gone."""
        self.cluster.server(port).kill()

    def restart(self, port: int) -> None:
        """Start the node on `port` again, same port and directory: it rejoins from nodes.conf."""
        self.cluster.server(port).relaunch()

    def wait_ok(self, timeout_s: float = 30.0) -> None:
        """Until every running node says cluster_state:ok and all agree on the slot map."""
        self.cluster.wait_ok(timeout_s)

    def client(self, port: int) -> redis.Redis:
        """A plain (not cluster-aware) client of one node."""
        return redis.Redis(host="127.0.0.1", port=port, decode_responses=True, socket_timeout=2)


@contextlib.contextmanager
def local_cluster(tmp_dir: Path, masters: int = 3, replicas: int = 0) -> Iterator[ClusterUnderTest]:
    """A cluster of `masters` masters with `replicas` replicas each under `tmp_dir`, on free
    loopback ports; stopped on exit."""
    cluster = start_local_cluster(
        Path(tmp_dir),
        masters=masters,
        replicas=replicas,
        node_timeout_ms=TEST_NODE_TIMEOUT_MS,
    )
    try:
        yield ClusterUnderTest(cluster)
    finally:
        cluster.stop()
