"""The local Redis Cluster: formed from plain commands, failing over, rejoining, reused."""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import redis
from redis.cluster import RedisCluster

from stack.servers.cluster_state import SLOTS, cluster_info
from tests.cluster import ClusterUnderTest, local_cluster

FAILOVER_BOUND_S = 20.0


@contextlib.contextmanager
def cluster_client(url: str) -> Iterator[RedisCluster]:
    client = RedisCluster.from_url(url, decode_responses=True)
    try:
        yield client
    finally:
        client.close()
        client.disconnect_connection_pools()


def covered_slots(cluster: ClusterUnderTest, port: int) -> list[tuple[int, int]]:
    with cluster.client(port) as client:
        return sorted((int(e[0]), int(e[1])) for e in client.execute_command("CLUSTER", "SLOTS"))


def test_every_slot_is_covered_and_every_node_is_ok(redis_cluster: ClusterUnderTest) -> None:
    nodes = redis_cluster.nodes
    assert len(nodes) == 6 and len({node.port for node in nodes}) == 6
    assert sorted(node.role for node in nodes) == ["master"] * 3 + ["replica"] * 3
    for node in nodes:
        with redis_cluster.client(node.port) as client:
            info = cluster_info(client.execute_command("CLUSTER", "INFO"))
        assert info["cluster_state"] == "ok"
        assert info["cluster_known_nodes"] == "6"
        ranges = covered_slots(redis_cluster, node.port)
        assert ranges[0][0] == 0 and ranges[-1][1] == SLOTS - 1
        assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(ranges))
    assert redis_cluster.url == f"redis://127.0.0.1:{nodes[0].port}/0"
    with cluster_client(redis_cluster.url) as client:
        for key in ("alpha", "beta", "gamma", "delta", "{seat}:1"):
            client.set(f"formed:{key}", key)
        assert client.get("formed:gamma") == "gamma"
        assert len({client.keyslot(f"formed:{k}") // (SLOTS // 3) for k in "abcdefgh"}) > 1


def master_with_replica(cluster: ClusterUnderTest) -> tuple[int, int]:
    """(master port, its replica's port)."""
    for node in cluster.nodes:
        if node.role != "replica":
            continue
        with cluster.client(node.port) as client:
            return int(client.info("replication")["master_port"]), node.port
    raise AssertionError("no replica in the cluster")


def test_killed_master_fails_over_to_its_replica_and_rejoins(
    redis_cluster: ClusterUnderTest,
) -> None:
    master, replica = master_with_replica(redis_cluster)
    with cluster_client(redis_cluster.url) as client:
        with redis_cluster.client(master) as direct:
            first_slot = int(
                next(e for e in direct.execute_command("CLUSTER", "SLOTS") if e[2][1] == master)[0]
            )
        key = next(f"failover:{i}" for i in range(100_000) if _owner_slot(client, i, first_slot))
        client.set(key, "kept")
        with redis_cluster.client(master) as direct:
            assert direct.execute_command("WAIT", 1, 2000) >= 1  # the replica has it
        redis_cluster.kill(master)
        started = time.monotonic()
        redis_cluster.wait_ok(FAILOVER_BOUND_S)
        failover_s = time.monotonic() - started
        roles = {node.port: node.role for node in redis_cluster.nodes}
        assert roles[master] == "down" and roles[replica] == "master"
        assert failover_s < FAILOVER_BOUND_S
        assert _get_retrying(client, key) == "kept"

        redis_cluster.restart(master)
        redis_cluster.wait_ok(FAILOVER_BOUND_S)
        roles = {node.port: node.role for node in redis_cluster.nodes}
        assert roles[master] == "replica" and roles[replica] == "master"
        with redis_cluster.client(master) as rejoined:
            assert int(rejoined.info("replication")["master_port"]) == replica
            assert rejoined.execute_command("READONLY") and rejoined.get(key) == "kept"


def _owner_slot(client: RedisCluster, index: int, slot_range_start: int) -> bool:
    slot = client.keyslot(f"failover:{index}")
    return slot_range_start <= slot < slot_range_start + SLOTS // 3


def _get_retrying(client: RedisCluster, key: str) -> str | None:
    deadline = time.monotonic() + 10
    while True:
        try:
            return cast(str | None, client.get(key))  # decode_responses: str, not bytes
        except redis.RedisError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_a_formed_directory_is_reused_with_its_data(tmp_path: Path) -> None:
    with local_cluster(tmp_path, masters=3) as cluster:
        ports = [node.port for node in cluster.nodes]
        with cluster_client(cluster.url) as client:
            client.set("reused:key", "still here")  # a stop (SIGTERM) flushes the AOF
    with local_cluster(tmp_path, masters=3) as again:
        assert again.cluster.reused
        assert [node.port for node in again.nodes] == ports
        with cluster_client(again.url) as client:
            assert client.get("reused:key") == "still here"
