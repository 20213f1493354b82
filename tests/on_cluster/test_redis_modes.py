"""REDIS_CLUSTER against the server REDIS_URL names: a mismatch is refused at start, by name,
and each mode's client works against its own kind of server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from common.redis_client import RedisModeError, connect, publish_all, publish_command
from stack.infra import Endpoints, start_infra
from stack.processes import free_port


async def test_a_single_node_client_is_refused_by_a_cluster(redis_cluster: Any) -> None:
    with pytest.raises(RedisModeError, match="REDIS_CLUSTER=1") as refused:
        await connect(redis_cluster.url, cluster=False)
    assert "names a node of a Redis Cluster" in str(refused.value)


async def test_a_cluster_client_is_refused_by_a_single_node(redis_url: str) -> None:
    with pytest.raises(RedisModeError, match="REDIS_CLUSTER=1 but REDIS_URL") as refused:
        await connect(redis_url, cluster=True)
    assert "single Redis node" in str(refused.value)


async def test_each_mode_connects_to_its_own_kind(redis_url: str, redis_cluster: Any) -> None:
    single = await connect(redis_url, cluster=False)
    clustered = await connect(redis_cluster.url, cluster=True)
    try:
        assert isinstance(single, Redis) and isinstance(clustered, RedisCluster)
        assert await single.ping() and await clustered.ping()
        assert len(clustered.get_primaries()) >= 3
    finally:
        await single.aclose()
        await clustered.aclose()


async def test_publish_all_reaches_subscribers_on_every_shard(redis_cluster: Any) -> None:
    """Channels without a hash tag land on every shard; each SPUBLISH goes to its owner."""
    client = await connect(redis_cluster.url, cluster=True)
    assert isinstance(client, RedisCluster)
    channels = [f"br:test:spread:{n}" for n in range(12)]
    owners = {client.get_node_from_key(channel).name for channel in channels}  # type: ignore[union-attr]
    assert len(owners) >= 2
    pubsub = client.pubsub()
    try:
        await pubsub.ssubscribe(*channels)
        confirmed = 0
        while confirmed < len(channels):
            message = await pubsub.get_sharded_message(timeout=1.0)
            assert message is not None, f"only {confirmed} subscriptions confirmed"
            confirmed += message["type"] == "ssubscribe"
        await publish_all(client, [(channel, channel.encode()) for channel in channels])
        received: set[str] = set()
        for _ in range(200):
            message = await pubsub.get_sharded_message(timeout=0.1)
            if message is not None and message["type"] == "smessage":
                assert message["data"] == message["channel"]
                received.add(message["channel"].decode())
            if received == set(channels):
                break
        assert received == set(channels)
    finally:
        await pubsub.aclose()
        await client.aclose()
    assert publish_command(True) == "SPUBLISH" and publish_command(False) == "PUBLISH"


PROCESSES = [
    ["-m", "booking", "serve"],
    ["-m", "gateway", "serve"],
    ["-m", "workers", "reconciler"],
    ["-m", "workers", "queue-release"],
]


def _start(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *argv],
        env={
            **os.environ,
            **env,
            "BOOKING_PORT": str(free_port()),
            "GATEWAY_PORT": str(free_port()),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("argv", PROCESSES, ids=lambda argv: argv[1] + ":" + argv[2])
def test_every_process_refuses_a_cluster_without_redis_cluster(
    argv: list[str], service_env: dict[str, str], redis_cluster: Any
) -> None:
    started = _start(argv, {**service_env, "REDIS_URL": redis_cluster.url, "REDIS_CLUSTER": "0"})
    assert started.returncode == 2, started.stderr[-2000:]
    assert "names a node of a Redis Cluster but REDIS_CLUSTER is not set" in started.stderr


@pytest.mark.parametrize("argv", PROCESSES[:2], ids=lambda argv: argv[1])
def test_every_process_refuses_redis_cluster_on_a_single_node(
    argv: list[str], service_env: dict[str, str]
) -> None:
    started = _start(argv, {**service_env, "REDIS_CLUSTER": "1"})
    assert started.returncode == 2, started.stderr[-2000:]
    assert "REDIS_CLUSTER=1 but REDIS_URL" in started.stderr


def test_the_launcher_refuses_a_cluster_url_without_redis_cluster(
    redis_cluster: Any, infra: Endpoints, tmp_path: Path
) -> None:
    env = {
        "REDIS_URL": redis_cluster.url,
        "DATABASE_URL": infra.database_url,
        "KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
    }
    with pytest.raises(RuntimeError, match="REDIS_CLUSTER is not set") as refused:
        start_infra(tmp_path, env=env, log=lambda line: None)
    assert "could not provide redis" in str(refused.value)
