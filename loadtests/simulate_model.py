"""The model of `python -m loadtests.simulate`: the unit costs per request kind (read from
loadtests/costs.json) and the stations (processes that serve first come, first served)."""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

COSTS = Path(__file__).with_name("costs.json")
BATCH = 500  # users per queue_look call of a board's refresh (booking/queue/stream.py)
EFFECTS = ("join", "reserve")  # kinds whose script changes the queue or the inventory
PG_KINDS = ("reserve", "pay")  # the kinds whose PostgreSQL writes are theirs (not background)
SATURATED = 0.95  # a station busy this share of a 1-s bucket is saturated
# Redis calls that do not run on the event's shard: the gateway's rate-limit buckets (per IP and
# per user, no shared tag) and classic pub/sub (SUBSCRIBE on whichever node the connection is on;
# note that a classic PUBLISH in Redis Cluster is forwarded to every node).
SPREAD_CALLS = {"rate_limit", "hello", "subscribe", "unsubscribe", "psubscribe", "punsubscribe"}

WINDOWS = ("join storm", "the minute after it")


@dataclass(frozen=True)
class Unit:
    """One request kind's demand per request: CPU seconds per station, Redis calls per shard,
    PostgreSQL commits / rows / outbox messages (the broker's messages)."""

    gateway: float
    booking: float
    event_shard: float
    spread: float
    postgres: float
    event_calls: float
    spread_calls: float
    commits: float
    rows: float
    outbox: float


def _redis_split(kind: Mapping[str, Any]) -> tuple[float, float, float, float]:
    """(event-shard µs, spread µs, event calls, spread calls) per request: the CPU window's Redis
    CPU shared out like the SLOWLOG window's execution time, each call also carrying an equal
    share of the CPU no command accounts for (network I/O, parsing)."""
    total = float(kind["cpu_us_per_request"].get("redis", 0.0))
    split = kind.get("redis")
    if not split:
        return total, 0.0, 0.0, 0.0
    calls = {**split["event_shard_calls"], **split["spread_calls"]}
    exec_us = split.get("exec_us_by_call", {})
    window_total = float(split["window_redis_cpu_us_per_request_info"])
    overhead = max(0.0, window_total - sum(exec_us.values())) / max(sum(calls.values()), 1e-9)
    event = spread = event_calls = spread_calls = 0.0
    for name, count in calls.items():
        weight = float(exec_us.get(name, 0.0)) + count * overhead
        if name in SPREAD_CALLS:
            spread, spread_calls = spread + weight, spread_calls + count
        else:
            event, event_calls = event + weight, event_calls + count
    share = event / max(event + spread, 1e-9)
    return total * share, total * (1 - share), event_calls, spread_calls


def _unit(kind: Mapping[str, Any], *, all_event: bool = False) -> Unit:
    cpu = kind["cpu_us_per_request"]
    pg = kind["postgres_per_request"]
    if all_event:
        event, spread = float(cpu.get("redis", 0.0)), 0.0
        event_calls, spread_calls = 0.0, 0.0
    else:
        event, spread, event_calls, spread_calls = _redis_split(kind)
    return Unit(
        gateway=cpu.get("gateway", 0.0) / 1e6,
        booking=cpu.get("booking", 0.0) / 1e6,
        event_shard=event / 1e6,
        spread=spread / 1e6,
        postgres=cpu.get("postgres", 0.0) / 1e6,
        event_calls=event_calls,
        spread_calls=spread_calls,
        commits=pg.get("commits", 0.0),
        rows=pg.get("rows_inserted", 0.0)
        + pg.get("rows_updated", 0.0)
        + pg.get("rows_deleted", 0.0),
        outbox=pg.get("outbox_messages", 0.0),
    )


def unit_costs(costs: Mapping[str, Any]) -> dict[str, Unit]:
    """The per-request demand of every kind the simulation uses, from costs.json. `refresh` is
    per position event (one waiting stream, one tick); `pass` is the pass alone: the measured
    pass window minus the position events it also delivered, priced as `refresh`."""
    kinds = costs["kinds"]
    units = {name: _unit(kinds[name]) for name in ("join", "stream", "reserve", "pay")}
    refresh = _unit(kinds["refresh"], all_event=True)
    units["refresh"] = Unit(**{**asdict(refresh), "event_calls": 1 / BATCH})
    raw = kinds["pass"]
    whole = _unit(raw, all_event=True)
    passes = max(int(raw["passes_received"]), 1)
    others = max(0, int(raw.get("events_received_in_window", passes)) - passes) / passes

    def alone(total: float, per_event: float) -> float:
        return max(total - others * per_event, 0.1 * total)

    units["pass"] = Unit(
        **{
            **asdict(whole),
            "gateway": alone(whole.gateway, refresh.gateway),
            "booking": alone(whole.booking, refresh.booking),
            "event_shard": alone(whole.event_shard, refresh.event_shard),
            "event_calls": 0.0,
        }
    )
    units["sold_out"] = units["pass"]  # assumed: one more event on an open stream, like a pass
    return units


@dataclass
class Config:
    buyers: int = 1_000_000
    seats: int = 50_000
    join_window: float = 60.0
    gateways: int = 64
    booking: int = 96
    shards: int = 4
    pg_cores: int = 8
    release_per_tick: int = 500
    max_concurrent: int = 5000
    pass_ttl: float = 120.0
    tick: float = 1.0
    first_tick: float = 0.0  # when queue-release first admits (the sale opening)
    separate_spread: bool = False  # users' keys on shards 1.. only, none on the event's shard
    refresh_every: int = 1  # ticks per `progress` (1: every admitting tick, as the code does)
    hold_ttl: float = 600.0
    think_reserve: float = 2.0
    think_pay: float = 10.0
    leave_share: float = 0.05
    lapse_share: float = 0.10
    decline_share: float = 0.05
    max_quantity: int = 4
    seed: int = 1
    horizon: float = 3600.0


class Station:
    """`servers` identical servers, first come first served (Kiefer-Wolfowitz: each arrival
    takes the earliest free server; arrivals are handed over in time order by the event loop).
    Busy seconds and offered seconds (work arrived) are kept per 1-s bucket and per kind."""

    __slots__ = ("_free", "busy", "by_kind", "calls", "name", "offered", "servers")

    def __init__(self, name: str, servers: int = 1, seconds: int = 3600) -> None:
        self.name = name
        self.servers = servers
        self._free = [0.0] * servers
        size = seconds + 2  # 1-s buckets; work past the horizon lands in the last one
        self.busy = [0.0] * size
        self.offered = [0.0] * size
        self.calls = [0.0] * size
        self.by_kind: dict[str, float] = {}

    def serve(self, t: float, service: float, kind: str, calls: float = 0.0) -> float:
        """Takes a job arriving at `t`; returns when it is done."""
        free = self._free
        if self.servers == 1:
            start = t if t > free[0] else free[0]
            done = start + service
            free[0] = done
        else:
            earliest = heapq.heappop(free)
            start = t if t > earliest else earliest
            done = start + service
            heapq.heappush(free, done)
        busy = self.busy
        top = len(busy) - 1
        first, last = int(start), int(done)
        if first == last:
            busy[first if first < top else top] += service
        else:
            busy[first if first < top else top] += first + 1 - start
            for bucket in range(first + 1, min(last, top)):
                busy[bucket] += 1.0
            busy[last if last < top else top] += done - last
        arrived = int(t)
        if arrived > top:
            arrived = top
        self.offered[arrived] += service
        if calls:
            self.calls[arrived] += calls
        by_kind = self.by_kind
        by_kind[kind] = by_kind.get(kind, 0.0) + service
        return done

    def utilisation(self, start: float, end: float) -> float:
        """Busy share of [start, end) (whole buckets), in [0, 1]."""
        first, last = int(start), max(int(start) + 1, math.ceil(end))
        busy = sum(self.busy[first:last])
        return min(1.0, busy / (self.servers * (last - first)))

    def offered_load(self, start: float, end: float) -> float:
        """Work that arrived in [start, end) over the capacity of that span (may exceed 1)."""
        first, last = int(start), max(int(start) + 1, math.ceil(end))
        return sum(self.offered[first:last]) / (self.servers * (last - first))

    def peak(self) -> tuple[float, int]:
        """Highest 1-s utilisation and its second."""
        best = max(range(len(self.busy)), key=self.busy.__getitem__)
        return min(1.0, self.busy[best] / self.servers), best
