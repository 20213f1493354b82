"""REDIS_CLUSTER_NODES through the infra entry point, an external cluster, and the counts that
are refused by name."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.cluster import RedisCluster

from stack.infra import Endpoints, start_infra
from stack.processes import wait_until
from stack.specs import StackSettings, process_env
from tests.cluster import ClusterUnderTest


@contextlib.contextmanager
def cluster_client(url: str) -> Iterator[RedisCluster]:
    client = RedisCluster.from_url(url, decode_responses=True)
    try:
        yield client
    finally:
        client.close()
        client.disconnect_connection_pools()


def answering(infra: Endpoints, **extra: str) -> dict[str, str]:
    """PostgreSQL and Kafka answer (the session's), so only Redis is in question."""
    return {"DATABASE_URL": infra.database_url, "KAFKA_BOOTSTRAP": infra.kafka_bootstrap, **extra}


def test_redis_cluster_nodes_starts_a_local_cluster_whose_nodes_are_watched(
    infra: Endpoints, run_dir: Path
) -> None:
    lines: list[str] = []
    env = answering(infra, REDIS_CLUSTER_NODES="3")
    handle = start_infra(run_dir, env, ports={"redis-cluster": 0}, log=lines.append)
    try:
        endpoints = handle.endpoints
        assert handle.cluster is not None and endpoints.redis_cluster
        assert endpoints.redis_url == handle.cluster.url
        assert handle.started == ["redis-node-1", "redis-node-2", "redis-node-3"]
        assert any("local cluster of 3 masters" in line for line in lines)
        with cluster_client(endpoints.redis_url) as client:
            for index in range(20):
                client.set(f"infra:{index}", index)
            assert client.get("infra:7") == "7"
        assert process_env(env, endpoints, StackSettings())["REDIS_CLUSTER"] == "1"

        handle.watch(log=lines.append, interval_s=0.05)
        node = handle.server("redis-node-2")
        assert node is not None
        port = node.port
        handle.kill_server("redis-node-2")
        assert wait_until(lambda: handle.server_restarts("redis-node-2") == 1, 20.0)
        assert node.port == port
        handle.cluster.wait_ok(20.0)
        with cluster_client(endpoints.redis_url) as client:
            assert [client.get(f"infra:{i}") for i in range(20)] == [str(i) for i in range(20)]
    finally:
        handle.stop()
    assert not any(server.is_running() for server in handle.cluster.servers)


def test_redis_url_with_redis_cluster_1_is_an_external_cluster_used_as_it_is(
    infra: Endpoints, run_dir: Path, redis_cluster: ClusterUnderTest
) -> None:
    env = answering(infra, REDIS_URL=redis_cluster.url, REDIS_CLUSTER="1", REDIS_CLUSTER_NODES="3")
    handle = start_infra(run_dir, env, log=lambda _line: None)
    try:
        assert handle.endpoints.redis_url == redis_cluster.url
        assert handle.endpoints.redis_cluster and handle.cluster is None
        assert handle.started == []
    finally:
        handle.stop()


def test_a_single_redis_says_redis_cluster_0(infra: Endpoints, run_dir: Path) -> None:
    env = answering(infra, REDIS_URL=infra.redis_url)
    handle = start_infra(run_dir, env, log=lambda _line: None)
    try:
        assert not handle.endpoints.redis_cluster
        assert process_env(env, handle.endpoints, StackSettings())["REDIS_CLUSTER"] == "0"
    finally:
        handle.stop()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("REDIS_CLUSTER_NODES", "2"),
        ("REDIS_CLUSTER_NODES", "three"),
        ("REDIS_CLUSTER_NODES", "-3"),
        ("REDIS_CLUSTER_REPLICAS", "-1"),
        ("REDIS_CLUSTER", "maybe"),
    ],
)
def test_bad_cluster_settings_are_refused_by_name(run_dir: Path, variable: str, value: str) -> None:
    with pytest.raises(ValueError, match=variable):
        start_infra(run_dir, {variable: value}, log=lambda _line: None)
    assert list(run_dir.iterdir()) == []  # refused before anything started


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("GATEWAY_REPLICAS", "0"),
        ("GATEWAY_REPLICAS", "two"),
        ("WORKER_COPIES", "0"),
        ("WORKER_COPIES", "1.5"),
        ("BOOKING_REPLICAS", "-1"),
    ],
)
def test_bad_process_counts_are_refused_by_name(variable: str, value: str) -> None:
    with pytest.raises(ValueError, match=variable):
        StackSettings.from_env({variable: value})
