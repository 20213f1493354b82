"""One way to open Redis: a single node, or a Redis Cluster when `REDIS_CLUSTER=1`.

The mode is configured, not guessed: a client of the wrong kind fails in confusing ways long
after start-up (a single-node client against a cluster answers `MOVED` on the first key of
another node; a cluster client against a single node cannot start). So `connect` checks the
server against the setting and refuses a mismatch at once, naming both variables.

On a cluster the pub/sub of this project is sharded (`SSUBSCRIBE`/`SPUBLISH`, Redis >= 7), so
a message only travels inside the shard that owns its channel's slot; `publish_command` says
which verb a mode uses (the Lua scripts get it the same way, see `lua.source`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, TypeAlias

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisClusterException

RedisClient: TypeAlias = Redis | RedisCluster


class RedisModeError(RuntimeError):
    """REDIS_CLUSTER does not match the server REDIS_URL names."""


def publish_command(cluster: bool) -> str:
    return "SPUBLISH" if cluster else "PUBLISH"


async def publish_all(client: RedisClient, messages: Sequence[tuple[str, bytes]]) -> None:
    """Publish each (channel, data) in one pipeline; on a cluster redis-py sends each SPUBLISH
    to the node owning its channel's slot."""
    verb = publish_command(isinstance(client, RedisCluster))
    async with client.pipeline(transaction=False) as pipe:
        for channel, data in messages:
            pipe.execute_command(verb, channel, data)
        await pipe.execute()


def open_redis(url: str, *, cluster: bool, **options: Any) -> RedisClient:
    """A client for `url` (not yet connected); `options` are redis-py connection options.

    On a cluster `max_connections` bounds each node's pool, not the total."""
    if cluster:
        # A MOVED patches the slot map instead of (every 5th, redis-py's default) closing every
        # connection of the client, which fails the commands other tasks have in flight.
        options.setdefault("reinitialize_steps", 0)
        return RedisCluster.from_url(url, **options)
    return Redis.from_url(url, **options)


def mode_mismatch(url: str, *, cluster: bool) -> str | None:
    """What is wrong when REDIS_CLUSTER does not match the server REDIS_URL names (None when it
    matches, or when the server does not answer: the normal start-up path reports that)."""
    import redis as sync_redis

    probe = sync_redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        enabled = int(probe.info("cluster").get("cluster_enabled", 0)) == 1
    except (sync_redis.RedisError, OSError):
        return None
    finally:
        probe.close()
    return _mismatch(url, server_is_cluster=enabled) if enabled != cluster else None


def refuse_mismatch_at_start(url: str, *, cluster: bool) -> None:
    """Before a process starts serving: one clear line and exit status 2 on a mismatch."""
    problem = mode_mismatch(url, cluster=cluster)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        raise SystemExit(2)


def _mismatch(url: str, *, server_is_cluster: bool) -> str:
    if server_is_cluster:
        return (
            f"REDIS_URL ({_redacted(url)}) names a node of a Redis Cluster but REDIS_CLUSTER is "
            "not set: set REDIS_CLUSTER=1 so every client follows the cluster's slots"
        )
    return (
        f"REDIS_CLUSTER=1 but REDIS_URL ({_redacted(url)}) names a single Redis node, not a "
        "cluster: unset REDIS_CLUSTER (or set it to 0)"
    )


async def verify_mode(client: RedisClient, *, url: str) -> None:
    """Raise `RedisModeError` when the client's kind does not match the server's mode."""
    if isinstance(client, RedisCluster):
        try:
            await client.initialize()
        except RedisClusterException as exc:
            if "cluster mode is not enabled" in str(exc).lower():
                raise RedisModeError(_mismatch(url, server_is_cluster=False)) from None
            raise
        return
    info = await client.info("cluster")
    if int(info.get("cluster_enabled", 0)) == 1:
        raise RedisModeError(_mismatch(url, server_is_cluster=True))


async def connect(url: str, *, cluster: bool, **options: Any) -> RedisClient:
    """`open_redis` then `verify_mode`: the client, checked against the server."""
    client = open_redis(url, cluster=cluster, **options)
    try:
        await verify_mode(client, url=url)
    except BaseException:
        await client.aclose()
        raise
    return client


def _redacted(url: str) -> str:
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
