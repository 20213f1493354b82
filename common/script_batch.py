"""Lua scripts run in batches of one event-loop turn (gateway rate limits, booking's inventory,
queue and waitlist scripts): `script_runner` picks the lean wire on a plain TCP node
(common/script_wire.py) and redis-py's pipelines elsewhere (`ScriptBatcher`: a Redis Cluster,
TLS, a unix socket)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MaxConnectionsError,
    MovedError,
    NoScriptError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from common.redis_client import RedisClient
from common.script_wire import WireScript, node_address
from common.turn_batch import Call, TurnBatcher


class ScriptRunner(Protocol):
    async def load(self) -> None: ...

    async def run(self, keys: Sequence[Any], args: Sequence[Any]) -> Any: ...

    async def aclose(self) -> None: ...


def script_runner(redis: RedisClient, source: str) -> ScriptRunner:
    """How `source` runs on `redis`: over the lean wire when it is one plain TCP node (with the
    client's address, credentials, db and timeouts), else through redis-py."""
    address = node_address(redis) if isinstance(redis, Redis) else None
    if address is None:
        return ScriptBatcher(redis, source)
    return WireScript(source, **address)


class ScriptBatcher(TurnBatcher):
    """Runs a Lua script, coalescing the calls made in one event-loop turn into one pipeline.

    Under load many requests run the same script in the same turn; one pipeline for all of them
    saves most of redis-py's per-command cost (measured: ~80 us of CPU per lone EVALSHA, ~25 us
    per command in a pipeline of 10) and most round trips. Each call still runs its own atomic
    script; pipelining only shares the trip. After a Redis restart (NOSCRIPT) the script is
    loaded again and only the calls that did not run are sent again.

    On a cluster (redis-py refuses EVALSHA in its cluster pipelines) the calls are grouped by
    the node owning their first key's slot and each group goes down one plain pipeline to that
    node. A call the node turned away without running it (MOVED/ASK during a resharding,
    TRYAGAIN, CLUSTERDOWN during a failover) is sent again on its own through the cluster
    client, which follows the redirection; a redirected script never ran, so it runs once.
    """

    def __init__(self, redis: RedisClient, source: str) -> None:
        super().__init__()
        self._redis = redis
        self._nodes: dict[str, Redis] = {}  # cluster only: one plain client per primary
        self._stale_map = False
        self._refreshing = asyncio.Lock()
        self.source = source
        self._sha = hashlib.sha1(source.encode()).hexdigest()
        self._running: set[asyncio.Task[None]] = set()

    async def load(self) -> None:
        """SCRIPT LOAD (at start-up, so a syntax error fails there and not mid-sale)."""
        await self._redis.script_load(self.source)

    def _flush(self, batch: list[Call]) -> None:
        task = asyncio.ensure_future(self._execute(batch))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _execute(self, batch: list[Call]) -> None:
        try:
            results = await self._pipeline(batch)
            unloaded = [n for n, result in enumerate(results) if isinstance(result, NoScriptError)]
            if unloaded:  # Redis restarted or was flushed
                await self._redis.script_load(self.source)
                again = await self._pipeline([batch[n] for n in unloaded])
                for n, result in zip(unloaded, again, strict=True):
                    results[n] = result
        except Exception as exc:
            self.fail(batch, exc)
            return
        for (*_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue  # the caller went away meanwhile
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def _pipeline(self, batch: list[Call]) -> list[Any]:
        if isinstance(self._redis, RedisCluster):
            return await self._cluster_pipeline(self._redis, batch)
        return await self._node_pipeline(self._redis, batch)

    async def _node_pipeline(self, redis: Redis, batch: list[Call]) -> list[Any]:
        async with redis.pipeline(transaction=False) as pipe:
            for keys, args, _future in batch:
                pipe.evalsha(self._sha, len(keys), *keys, *args)
            return list(await pipe.execute(raise_on_error=False))

    async def _cluster_pipeline(self, cluster: RedisCluster, batch: list[Call]) -> list[Any]:
        await cluster.initialize()
        if self._stale_map:
            async with self._refreshing:
                if self._stale_map:
                    self._stale_map = False
                    await cluster.nodes_manager.initialize()
        groups: dict[str, list[int]] = {}
        for n, (keys, _args, _future) in enumerate(batch):
            groups.setdefault(self._owner(cluster, keys[0]), []).append(n)
        results: list[Any] = [None] * len(batch)

        async def run_group(name: str, indexes: list[int]) -> None:
            answers = await self._node_pipeline_or_errors(
                cluster, name, [batch[n] for n in indexes]
            )
            for n, answer in zip(indexes, answers, strict=True):
                results[n] = answer

        await asyncio.gather(*(run_group(name, idx) for name, idx in groups.items()))
        turned_away = [n for n, result in enumerate(results) if isinstance(result, _TURNED_AWAY)]
        if turned_away:
            again = await self._follow(
                cluster, [batch[n] for n in turned_away], [results[n] for n in turned_away]
            )
            for n, result in zip(turned_away, again, strict=True):
                results[n] = result
        return results

    async def _node_pipeline_or_errors(
        self, cluster: RedisCluster, name: str, batch: list[Call], *, asking: bool = False
    ) -> list[Any]:
        try:
            client = self._node(cluster, name)
            if not asking:
                return await self._node_pipeline(client, batch)
            async with client.pipeline(transaction=False) as pipe:
                for keys, args, _future in batch:
                    pipe.execute_command("ASKING")
                    pipe.evalsha(self._sha, len(keys), *keys, *args)
                return list(await pipe.execute(raise_on_error=False))[1::2]
        except MaxConnectionsError as exc:  # nothing was sent
            return [exc] * len(batch)
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            # The node is gone (a failover?): the next batch routes by a fresh slot map.
            # These calls may have run: they fail, exactly as on a single node.
            self._stale_map = True
            return [exc] * len(batch)

    async def _follow(
        self, cluster: RedisCluster, calls: list[Call], answers: list[Any]
    ) -> list[Any]:
        """Sends turned-away calls again where the cluster says, round by round (each round
        one pipeline per destination), until they run: MOVED (the slot has a new owner: the
        slot map is patched), ASK (its keys are on their way: that node, after ASKING),
        TRYAGAIN/CLUSTERDOWN/a full pool (wait a little, then the owner the map names)."""
        answers = list(answers)
        for attempt in range(_FOLLOW_ATTEMPTS):
            pending = [n for n, answer in enumerate(answers) if isinstance(answer, _TURNED_AWAY)]
            if not pending:
                break
            routes: dict[tuple[str, bool], list[int]] = {}
            # The first redirection is followed at once; a call still turned away after that is
            # caught in a moment of the move (nodes disagree until every one has the new owner,
            # MOVED ping-pongs between them): wait a little longer each round.
            waited = attempt > 0
            if waited:
                await asyncio.sleep(_FOLLOW_PAUSE_S * attempt)
            for n in pending:
                answer = answers[n]
                if isinstance(answer, MovedError):
                    await cluster.nodes_manager.move_slot(answer)
                    route = (f"{answer.host}:{answer.port}", False)
                elif isinstance(answer, AskError):
                    route = (f"{answer.host}:{answer.port}", True)
                else:
                    if not waited:
                        await asyncio.sleep(_FOLLOW_PAUSE_S * (attempt + 1))
                        waited = True
                    if isinstance(answer, ClusterDownError):
                        self._stale_map = True
                    route = (self._owner(cluster, calls[n][0][0]), False)
                routes.setdefault(route, []).append(n)
            for (name, asking), indexes in routes.items():
                group = [calls[n] for n in indexes]
                again = await self._node_pipeline_or_errors(cluster, name, group, asking=asking)
                if any(isinstance(answer, NoScriptError) for answer in again):
                    await self._node(cluster, name).script_load(self.source)  # a new primary
                    again = await self._node_pipeline_or_errors(cluster, name, group, asking=asking)
                for n, answer in zip(indexes, again, strict=True):
                    answers[n] = answer
        return answers

    @staticmethod
    def _owner(cluster: RedisCluster, key: Any) -> str:
        node = cluster.get_node_from_key(key)
        if node is None:
            raise ClusterDownError(f"no Redis Cluster node serves the slot of {key!r}")
        return str(node.name)

    def _node(self, cluster: RedisCluster, name: str) -> Redis:
        client = self._nodes.get(name)
        if client is None:
            host, _, port = name.rpartition(":")
            options = cluster.get_connection_kwargs()
            client = Redis(
                host=host,
                port=int(port),
                username=options.get("username"),
                password=options.get("password"),
                socket_timeout=options.get("socket_timeout"),
                socket_connect_timeout=options.get("socket_connect_timeout"),
                client_name=options.get("client_name"),
                max_connections=options.get("max_connections"),
            )
            self._nodes[name] = client
        return client

    async def aclose(self) -> None:
        """Closes the per-node clients (cluster only; the main client is the caller's)."""
        for name in tuple(self._nodes):
            client = self._nodes.pop(name)
            await client.aclose()


# Answers from a node that did not run the script: safe to send again elsewhere.
# (MaxConnectionsError: this client's pool to the node was full, so nothing was sent.)
_TURNED_AWAY = (MovedError, AskError, TryAgainError, ClusterDownError, MaxConnectionsError)
# A resharding moves a slot's keys in batches (TRYAGAIN while a script's keys are split) and a
# failover takes the cluster's node timeout and then some: about 4 s of patience in all.
_FOLLOW_ATTEMPTS = 12
_FOLLOW_PAUSE_S = 0.05
