"""The virtual queue's state: Redis (the `lua/queue_*.lua` scripts and plain reads) and its
PostgreSQL columns (settings, the pre-queue seed)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from booking.inventory.keys import OPEN_QUEUES, queue_keys
from booking.inventory.lua_errors import check_reply
from booking.inventory.scripts import TimedScript
from common.redis_client import RedisClient, publish_all

QUEUE_SCRIPT_NAMES = (
    "queue_init",
    "queue_join",
    "queue_admit",
    "queue_shuffle",
    "queue_leave",
    "queue_look",
)


@dataclass(frozen=True, slots=True)
class QueueConfig:
    event_id: str
    sale_starts_ms: int
    max_concurrent: int
    release_per_tick: int
    pass_ttl_s: int
    paused: bool
    seed: bytes


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a user stands: waiting (position), pre (joined before the sale), or admitted."""

    status: str
    position: int | None = None
    queue_pass: str | None = None
    expires_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Outflow:
    """What an estimate of the wait needs: the measured admission rate and the configuration."""

    rate: float  # EWMA of admitted users per second; 0 before the first tick measured it
    release_per_tick: int
    tick_ms: int
    sold_out: bool = False


def _outflow(rate: Any, per_tick: Any, tick: Any, sold_out: Any) -> Outflow:
    """The queue fields queue_join and queue_look return ('' when absent)."""
    return Outflow(
        rate=float(_text(rate)) if rate else 0.0,
        release_per_tick=_int(per_tick or None, 1),
        tick_ms=_int(tick or None, 1000),
        sold_out=_int(sold_out or None) == 1,
    )


@dataclass(frozen=True, slots=True)
class AdmitResult:
    admitted: int
    status: str
    waiting: int
    passes_active: int
    rate: float


@dataclass(frozen=True, slots=True)
class TickPlan:
    """The worker's view of one queue before a tick (read without a script; the script decides)."""

    open: bool
    paused: bool
    sale_starts_ms: int
    shuffled: bool
    seed: bytes
    pass_ttl_ms: int
    candidates: int  # how many of the head the script may admit at most
    pre_count: int


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _int(value: Any, default: int = 0) -> int:
    return default if value is None else int(_text(value))


class QueueStore:
    """The queue scripts bound to one Redis client. Build once per process."""

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._scripts = {name: TimedScript(name, redis) for name in QUEUE_SCRIPT_NAMES}

    async def load(self) -> None:
        """SCRIPT LOAD every queue script (a syntax error fails at start-up)."""
        for script in self._scripts.values():
            await script.load()

    async def aclose(self) -> None:
        """Closes the scripts' own per-node clients (cluster only); the Redis client is the
        caller's."""
        for script in self._scripts.values():
            await script.aclose()

    async def _run(self, name: str, event_id: str, args: Sequence[Any]) -> list[Any]:
        return await self._scripts[name](keys=queue_keys(event_id).script_keys(), args=args)

    async def init_queue(self, config: QueueConfig) -> None:
        await self._run(
            "queue_init",
            config.event_id,
            (
                config.event_id,
                config.sale_starts_ms,
                config.max_concurrent,
                config.release_per_tick,
                config.pass_ttl_s * 1000,
                1 if config.paused else 0,
                config.seed.hex(),
            ),
        )
        await self._redis.zadd(OPEN_QUEUES, {config.event_id: config.sale_starts_ms})

    async def join(self, event_id: str, user_id: str, now_ms: int) -> tuple[Placement, Outflow]:
        """The placement and the outflow, in one script call (no second read for the answer)."""
        reply = check_reply(await self._run("queue_join", event_id, (user_id, now_ms)))
        status = _text(reply[1])
        outflow = _outflow(*reply[4:8])
        if status == "admitted":
            placement = Placement("admitted", queue_pass=_text(reply[2]), expires_ms=_int(reply[3]))
            return placement, outflow
        return Placement(status, position=_int(reply[2])), outflow

    async def look(
        self, event_id: str, user_id: str, now_ms: int
    ) -> tuple[Placement | None, Outflow]:
        """Where the user stands (None: not in the queue) and the outflow, in one script call."""
        placements, outflow = await self.look_many(event_id, [user_id], now_ms)
        return placements[0], outflow

    async def look_many(
        self, event_id: str, user_ids: Sequence[str], now_ms: int
    ) -> tuple[list[Placement | None], Outflow]:
        """`look` for many users of one event in one script call (the streams' batched refresh)."""
        reply = await self._run("queue_look", event_id, (now_ms, *user_ids))
        pre_count = int(reply[0])
        outflow = _outflow(*reply[1:5])
        placements: list[Placement | None] = []
        for n in range(len(user_ids)):
            rank, pre, record = reply[5 + 3 * n : 8 + 3 * n]
            rank = int(rank)
            if rank >= 0:
                placements.append(Placement("waiting", position=rank + 1 + pre_count))
            elif int(pre):
                placements.append(Placement("pre", position=pre_count))
            elif record:
                _, expires, token = _text(record).split("|", 2)
                placements.append(Placement("admitted", queue_pass=token, expires_ms=int(expires)))
            else:
                placements.append(None)
        return placements, outflow

    async def leave(self, event_id: str, user_id: str) -> bool:
        reply = await self._run("queue_leave", event_id, (user_id,))
        return int(reply[1]) == 1

    async def update_settings(self, event_id: str, fields: dict[str, int]) -> None:
        """Live change of the outflow: the next tick reads it (only when the queue is set up)."""
        keys = queue_keys(event_id)
        if fields and await self._redis.exists(keys.queue):
            mapping: dict[Any, Any] = dict(fields)
            await self._redis.hset(keys.queue, mapping=mapping)

    # the worker's side

    async def open_queue_ids(self) -> list[str]:
        return [_text(raw) for raw in await self._redis.zrange(OPEN_QUEUES, 0, -1)]

    async def forget_queue(self, event_id: str) -> None:
        """The queue will never admit again (sold out, or gone): ticks stop visiting it."""
        await self._redis.zrem(OPEN_QUEUES, event_id)

    async def plan_tick(self, event_id: str, now_ms: int) -> TickPlan | None:
        keys = queue_keys(event_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hmget(
                keys.queue,
                [
                    "open",
                    "paused",
                    "sale_starts_ms",
                    "shuffled",
                    "seed",
                    "pass_ttl_ms",
                    "max_concurrent",
                    "release_per_tick",
                ],
            )
            pipe.zcount(keys.passes_active, f"({now_ms}", "+inf")
            pipe.zcard(keys.pre)
            fields, live, pre_count = await pipe.execute()
        is_open, paused, starts, shuffled, seed, ttl, most, per_tick = fields
        if is_open is None:
            return None
        return TickPlan(
            open=_int(is_open) == 1,
            paused=_int(paused) == 1,
            sale_starts_ms=_int(starts),
            shuffled=_int(shuffled) == 1,
            seed=bytes.fromhex(_text(seed or b"")),
            pass_ttl_ms=_int(ttl, 120_000),
            candidates=max(0, min(_int(per_tick, 1), _int(most, 1) - int(live))),
            pre_count=int(pre_count),
        )

    async def stats(self, event_id: str, now_ms: int) -> dict[str, Any] | None:
        """The queue's live counters for the drop view (None when the event has no queue)."""
        keys = queue_keys(event_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hmget(keys.queue, ["open", "paused", "sold_out", "rate"])
            pipe.zcard(keys.waiting)
            pipe.zcard(keys.pre)
            pipe.zcount(keys.passes_active, f"({now_ms}", "+inf")
            fields, waiting, pre_count, live = await pipe.execute()
        is_open, paused, sold_out, rate = fields
        if is_open is None:
            return None
        return {
            "open": _int(is_open) == 1,
            "paused": _int(paused) == 1,
            "sold_out": _int(sold_out) == 1,
            "waiting": int(waiting),
            "pre_queue": int(pre_count),
            "passes_outstanding": int(live),
            "admitted_per_s": round(float(_text(rate)), 3) if rate is not None else 0.0,
        }

    async def head(self, event_id: str, count: int) -> list[str]:
        if count <= 0:
            return []
        return [
            _text(user)
            for user in await self._redis.zrange(queue_keys(event_id).waiting, 0, count - 1)
        ]

    async def pre_queue(self, event_id: str) -> list[str]:
        return [_text(user) for user in await self._redis.zrange(queue_keys(event_id).pre, 0, -1)]

    async def shuffle(self, event_id: str, order: Sequence[str]) -> int:
        """Places the pre-queue in `order`; 0 when another copy did it or the set changed."""
        reply = await self._run("queue_shuffle", event_id, tuple(order))
        return int(reply[1]) if int(reply[0]) == 1 else 0

    async def admit(
        self,
        event_id: str,
        *,
        now_ms: int,
        tick_ms: int,
        expires_ms: int,
        candidates: Sequence[tuple[str, str, str]],
    ) -> AdmitResult:
        args: list[Any] = [now_ms, tick_ms, expires_ms]
        for triple in candidates:
            args.extend(triple)
        reply = await self._run("queue_admit", event_id, args)
        chosen = [candidates[int(n) - 1] for n in reply[6:]]
        if chosen:
            await self._push_passes(event_id, chosen, now_ms=now_ms, expires_ms=expires_ms)
        return AdmitResult(
            admitted=int(reply[1]),
            status=_text(reply[2]),
            waiting=int(reply[3]),
            passes_active=int(reply[4]),
            rate=float(_text(reply[5])),
        )

    async def _push_passes(
        self,
        event_id: str,
        admitted: Sequence[tuple[str, str, str]],
        *,
        now_ms: int,
        expires_ms: int,
    ) -> None:
        """Each admitted user's pass on its own channel. A push lost here (a crash right after
        the script) costs no pass: the script's `progress` message makes every stream of the
        event read its state, and the pass is in it."""
        keys = queue_keys(event_id)
        messages = [
            (
                keys.user_channel(user_id),
                orjson.dumps(
                    {
                        "type": "pass",
                        "queue_pass": token,
                        "expires_ms": expires_ms,
                        "admitted_ms": now_ms,
                    }
                ),
            )
            for user_id, _pass_id, token in admitted
        ]
        await publish_all(self._redis, messages)


# PostgreSQL


async def find_seeds(
    conn: asyncpg.Connection | asyncpg.Pool, event_ids: Sequence[str]
) -> dict[str, bytes]:
    """The pre-queue seed of each event (drawn by PostgreSQL when the event row was created)."""
    rows = await conn.fetch(
        "SELECT event_id, queue_seed FROM events WHERE event_id = ANY($1::uuid[])",
        [uuid.UUID(event_id) for event_id in event_ids],
    )
    return {str(row["event_id"]): bytes(row["queue_seed"]) for row in rows}


async def update_queue_settings(
    conn: asyncpg.Connection | asyncpg.Pool,
    event_id: str,
    *,
    max_concurrent: int | None,
    release_per_tick: int | None,
    paused: bool | None,
) -> None:
    await conn.execute(
        """UPDATE events SET
               queue_max_concurrent = coalesce($2, queue_max_concurrent),
               queue_release_per_tick = coalesce($3, queue_release_per_tick),
               queue_paused = coalesce($4, queue_paused)
           WHERE event_id = $1""",
        uuid.UUID(event_id),
        max_concurrent,
        release_per_tick,
        paused,
    )
