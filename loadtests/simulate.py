"""`python -m loadtests.simulate`: a discrete-event simulation of a ticket drop, driven by the
unit costs `loadtests/costs.py` measured on this machine (loadtests/costs.json). Stdlib only,
seeded, deterministic. docs/scaling.md explains the model and shows a run.

What is simulated (one event, its keys on ONE Redis shard because of the `{ev:<id>}` hash tag):
- stations: G gateway processes, P booking processes, S Redis shards (each one server: one
  core, one event loop / one Redis thread; shard 0 holds the event) and PostgreSQL (`--pg-cores`
  servers). A station serves first come, first served; a request visits gateway (rate limit on
  the user's spread shard) -> booking process -> the event's shard, each visit costing the
  measured CPU of that process for that request kind (service time = CPU µs: a saturated
  process is busy computing, which is what the measured CPU per request says).
- buyers: `--buyers` joins uniformly over `--join-window` s; each join opens its position
  stream (sticky on one gateway and one booking process); like the drop (loadtests/README.md),
  5 % leave the queue 0.2-2 s after opening it, 10 % let their hold lapse, 5 % pay and are
  declined; each wants 1-4 tickets.
- queue-release: every `--tick` s ONE `queue_admit` on the event's shard admits up to
  `--release-per-tick` while live passes < `--max-concurrent`; each pass goes back through the
  buyer's booking process and gateway (pass delivery); an unused pass lapses after `--pass-ttl`.
  A tick that admitted someone publishes one `progress`: every booking process then refreshes
  the positions of its waiting streams in batches of 500 (one `queue_look` on the event's
  shard per batch, one after the other, a new round only when the last one ended, as
  booking/queue/stream.py does), and the gateways relay the position events.
- buyers with a pass think (`--think-reserve`, exponential mean), reserve (GA: the hold is
  decided when the script runs on the shard), think (`--think-pay`) and pay; a decline frees the
  seats, a lapse frees them after `--hold-ttl`; no seat left and no hold live: sold out, every
  waiting stream gets `sold_out` (priced like a pass delivery) and ends.

Not simulated (see docs/scaling.md): client time-outs and retries, the saga's confirm and the
broker (reported as rates only), the 15 s resync of every stream, the growth of ZRANK cost with
the queue's size, cross-machine network time.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import json
import math
import random
from collections import deque
from collections.abc import Mapping, Sequence
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


WINDOWS = ("join storm", "the minute after it")
Visit = tuple[Station, float, float, bool]  # station, service s, Redis calls, served at once
# event codes
VISIT, DONE, TICK, LEAVE, LAPSE, PASS_EXPIRY, THINK_RESERVE, THINK_PAY = range(8)
# buyer states
JOINING, WAITING, ADMITTED, HOLDING, FINISHED = range(5)


def _pct(values: Sequence[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class Drop:
    """One simulated drop; `run()` returns the report as a dict."""

    def __init__(self, config: Config, units: Mapping[str, Unit]) -> None:
        self.c = config
        self.u = units
        self.rng = random.Random(config.seed)
        seconds = int(config.horizon)
        self.gateways = [Station(f"gateway-{i}", 1, seconds) for i in range(config.gateways)]
        self.bookings = [Station(f"booking-{i}", 1, seconds) for i in range(config.booking)]
        self.shards = [Station(f"redis-shard-{i}", 1, seconds) for i in range(config.shards)]
        self.postgres = Station("postgres", config.pg_cores, seconds)
        self.events: list[tuple[float, int, int, Any]] = []
        self.seq = itertools.count()
        self.rr = 0  # the gateways' round-robin over booking processes
        # the event's inventory and queue
        self.available = config.seats
        self.held = 0
        self.sold = 0
        self.queue: deque[int] = deque()
        self.live_passes = 0
        self.open = True
        self.sold_out_at: float | None = None
        # per-process waiting streams and refresh rounds
        self.waiting_on = [0] * config.booking
        self.round_active = [False] * config.booking
        self.round_pending = [False] * config.booking
        self.round_started = [0.0] * config.booking
        self.round_seconds: list[float] = []  # one process refreshing all its waiting streams
        # buyers
        n = config.buyers
        self.state = [JOINING] * n
        self.joined_at = [0.0] * n
        self.admitted_at = [0.0] * n
        self.proc = [0] * n
        self.qty = [1] * n
        self.fate = [0] * n  # 0 buys, 1 leaves the queue, 2 lets the hold lapse, 3 declined
        # results
        self.latency: dict[str, list[float]] = {k: [] for k in ("join", "stream", "reserve", "pay")}
        self.queue_wait: list[float] = []
        self.pass_delay: list[float] = []
        self.admitted = 0
        self.passes_lapsed = 0
        self.counts: dict[str, int] = {}
        self.position_events = 0
        self.ticks = 0
        self.pg_by_kind: dict[str, list[float]] = {}
        self.activity: dict[str, list[float]] = {}  # kind -> [first, last] time requested
        self.per_second: dict[str, dict[int, int]] = {}  # kind -> second -> requests

    # -- plumbing -------------------------------------------------------------------------------
    def push(self, t: float, code: int, payload: Any) -> None:
        heapq.heappush(self.events, (t, next(self.seq), code, payload))

    def _path(self, kind: str, buyer: int, gateway: int, proc: int) -> tuple[list[Visit], int]:
        """A client request's visits: gateway (+ rate limit on the user's shard) -> booking ->
        event shard (-> PostgreSQL for the kinds that write); and the index of the event
        shard's visit. A rate-limit visit to a shard other than the event's is served at once
        when the gateway visit ends (its order among that shard's arrivals is approximate)."""
        unit = self.u[kind]
        self.counts[kind] = self.counts.get(kind, 0) + 1
        path: list[Visit] = [(self.gateways[gateway], unit.gateway, 0.0, False)]
        if unit.spread or unit.spread_calls:
            apart = self.c.separate_spread and len(self.shards) > 1
            spread = len(self.shards) - 1 if apart else len(self.shards)
            index = (buyer * 2654435761) % spread + (1 if apart else 0)
            path.append((self.shards[index], unit.spread, unit.spread_calls, index != 0))
        path.append((self.bookings[proc], unit.booking, 0.0, False))
        effect = len(path)
        path.append((self.shards[0], unit.event_shard, unit.event_calls, False))
        if kind in PG_KINDS:
            path.append((self.postgres, unit.postgres, 0.0, False))
            self._pg(kind, unit)
        return path, effect

    def request(self, t: float, kind: str, buyer: int, gateway: int, proc: int) -> None:
        span = self.activity.setdefault(kind, [t, t])
        span[1] = t
        per_s = self.per_second.setdefault(kind, {})
        per_s[int(t)] = per_s.get(int(t), 0) + 1
        path, effect = self._path(kind, buyer, gateway, proc)
        boundary = -1
        if kind == "join":  # the client opens its position stream as soon as the join answers
            self.joined_at[buyer] = t
            self.proc[buyer] = self.booking_for_request()
            boundary = len(path)
            stream, _ = self._path("stream", buyer, gateway, self.proc[buyer])
            path += stream
        elif kind not in EFFECTS:
            effect = -1
        self.visit(t, [kind, buyer, path, 0, t, effect, boundary])  # now is t: no need to queue it

    def _pg(self, kind: str, unit: Unit) -> None:
        row = self.pg_by_kind.setdefault(kind, [0.0, 0.0, 0.0])
        row[0] += unit.commits
        row[1] += unit.rows
        row[2] += unit.outbox

    def job(self, t: float, kind: str, path: list[Visit], tag: Any) -> None:
        """Work that is not a client request (pass delivery, refresh batch, sold-out)."""
        self.visit(t, [kind, tag, path, 0, t, -1, -1])

    def booking_for_request(self) -> int:
        self.rr = (self.rr + 1) % len(self.bookings)
        return self.rr

    # -- the run --------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        c, rng = self.c, self.rng
        arrivals = sorted(rng.uniform(0.0, c.join_window) for _ in range(c.buyers))
        for buyer in range(c.buyers):
            self.qty[buyer] = rng.randint(1, c.max_quantity)
            draw = rng.random()
            if draw < c.leave_share:
                self.fate[buyer] = 1
            elif draw < c.leave_share + c.lapse_share:
                self.fate[buyer] = 2
            elif draw < c.leave_share + c.lapse_share + c.decline_share:
                self.fate[buyer] = 3
        self.push(c.first_tick, TICK, None)
        events, pop = self.events, heapq.heappop
        next_arrival, n = 0, c.buyers
        g = len(self.gateways)
        while True:
            if next_arrival < n and (not events or arrivals[next_arrival] <= events[0][0]):
                buyer = next_arrival
                next_arrival += 1
                self.request(arrivals[buyer], "join", buyer, buyer % g, self.booking_for_request())
                continue
            if not events:
                break
            t, _, code, payload = pop(events)
            if t > c.horizon:
                break
            if code == VISIT:
                self.visit(t, payload)
            elif code == DONE:
                self.done(t, payload)
            elif code == TICK:
                self.tick(t)
            elif code == LEAVE:
                self.leave(t, payload)
            elif code == LAPSE:
                self.lapse(t, payload)
            elif code == PASS_EXPIRY:
                self.pass_expiry(t, payload)
            elif code == THINK_RESERVE:
                buyer = payload
                self.request(t, "reserve", buyer, buyer % g, self.booking_for_request())
            elif code == THINK_PAY:
                buyer = payload
                self.request(t, "pay", buyer, buyer % g, self.booking_for_request())
        return self.report(arrivals[-1] if arrivals else 0.0)

    def visit(self, t: float, req: list[Any]) -> None:
        kind, tag, path, i, _, effect, boundary = req
        if i == boundary:  # the join answered: its stream opens now
            self.latency["join"].append(t - req[4])
            req[0] = kind = "stream"
            req[4] = t
            span = self.activity.setdefault("stream", [t, t])
            span[1] = t
        station, service, calls, _ = path[i]
        if kind == "tick":
            admitted = self.admit(t)
            service = self.u["pass"].event_shard * max(len(admitted), 1)
            done = station.serve(t, service, kind, 1.0)
            self.deliver(t, done, admitted)
            return
        done = station.serve(t, service, kind, calls)
        if i == effect:
            self.on_event_shard(kind, tag)
        i += 1
        while i < len(path) and path[i][3]:  # a rate-limit call on another shard: at once
            station, service, calls, _ = path[i]
            done = station.serve(done, service, kind, calls)
            i += 1
        if i < len(path):
            req[3] = i
            self.push(done, VISIT, req)
        else:
            self.push(done, DONE, req)

    def on_event_shard(self, kind: str, buyer: Any) -> None:
        """The script's effect, in the order the shard runs scripts (FCFS on one server)."""
        if kind == "join":
            self.queue.append(buyer)
            self.state[buyer] = WAITING
        elif kind == "reserve":
            want = self.qty[buyer]
            if self.available <= 0:
                self.qty[buyer] = 0
                return
            take = min(want, self.available)  # the buyer settles for what is left
            self.qty[buyer] = take
            self.available -= take
            self.held += take
            self.live_passes -= 1  # the pass is consumed with the hold

    def done(self, t: float, req: list[Any]) -> None:
        kind, buyer, _, _, started, _, _ = req
        c = self.c
        if kind == "stream":  # the join, then its stream, answered
            self.latency["stream"].append(t - started)
            if self.state[buyer] == WAITING:
                self.waiting_on[self.proc[buyer]] += 1
                if self.fate[buyer] == 1:
                    self.push(t + self.rng.uniform(0.2, 2.0), LEAVE, buyer)
        elif kind == "pass":
            self.pass_delay.append(t - started)
            self.queue_wait.append(t - self.joined_at[buyer])
            self.push(t + self.rng.expovariate(1 / c.think_reserve), THINK_RESERVE, buyer)
        elif kind == "reserve":
            self.latency["reserve"].append(t - started)
            if self.qty[buyer] == 0:  # sold out: the buyer leaves, freeing its pass
                self.live_passes -= 1
                self.state[buyer] = FINISHED
                self.counts["reserve_sold_out"] = self.counts.get("reserve_sold_out", 0) + 1
                return
            self.state[buyer] = HOLDING
            if self.fate[buyer] == 2:
                self.push(t + c.hold_ttl, LAPSE, buyer)
            else:
                self.push(t + self.rng.expovariate(1 / c.think_pay), THINK_PAY, buyer)
        elif kind == "pay":
            self.latency["pay"].append(t - started)
            self.held -= self.qty[buyer]
            if self.fate[buyer] == 3:
                self.available += self.qty[buyer]
                self.counts["declined"] = self.counts.get("declined", 0) + 1
            else:
                self.sold += self.qty[buyer]
                self.counts["bought"] = self.counts.get("bought", 0) + 1
            self.state[buyer] = FINISHED
        elif kind == "refresh" and buyer is not None:  # a batch (not the gateways' relay)
            self.refresh_batch_done(t, buyer)

    # -- the queue ------------------------------------------------------------------------------
    def tick(self, t: float) -> None:
        """queue-release's tick: one queue_admit on the event's shard."""
        if not self.open:
            return
        self.ticks += 1
        self.job(t, "tick", [(self.shards[0], 0.0, 1.0, False)], None)
        joined_all = self.counts.get("join", 0) >= self.c.buyers
        idle = not self.queue and self.live_passes <= 0 and self.held <= 0
        if not (joined_all and idle and t > self.c.join_window):
            self.push(t + self.c.tick, TICK, None)

    def admit(self, t: float) -> list[int]:
        """queue_admit, in the shard's order: closes the queue when sold out, else admits up to
        the limits in join order; returns the admitted buyers."""
        if self.available <= 0:
            if self.held <= 0 and self.open:
                self.close(t)
            return []
        slots = min(self.c.release_per_tick, self.c.max_concurrent - self.live_passes)
        admitted: list[int] = []
        while slots > 0 and self.queue:
            buyer = self.queue.popleft()
            if self.state[buyer] != WAITING:
                continue
            self.state[buyer] = ADMITTED
            proc = self.proc[buyer]
            self.waiting_on[proc] = max(0, self.waiting_on[proc] - 1)
            admitted.append(buyer)
            slots -= 1
        self.live_passes += len(admitted)
        self.admitted += len(admitted)
        return admitted

    def deliver(self, t: float, done: float, admitted: Sequence[int]) -> None:
        """The passes minted at tick time `t` (their clock) leave the shard at `done`: each goes
        through its stream's booking process and gateway; then the feed's `progress`."""
        unit = self.u["pass"]
        for buyer in admitted:
            gateway = self.gateways[buyer % len(self.gateways)]
            path = [
                (self.bookings[self.proc[buyer]], unit.booking, 0.0, False),
                (gateway, unit.gateway, 0.0, False),
            ]
            self.push(done, VISIT, ["pass", buyer, path, 0, t, -1, -1])
            self.push(t + self.c.pass_ttl, PASS_EXPIRY, buyer)
        if admitted and self.ticks % self.c.refresh_every == 0:
            for proc in range(len(self.bookings)):
                self.progress(done, proc)

    def close(self, t: float) -> None:
        """Sold out: the queue closes and every waiting stream gets `sold_out`."""
        self.open = False
        self.sold_out_at = t
        unit = self.u["sold_out"]
        waiting = 0
        for buyer in self.queue:
            if self.state[buyer] == WAITING:
                self.state[buyer] = FINISHED
                waiting += 1
        self.queue.clear()
        self.counts["told_sold_out"] = waiting
        for proc, count in enumerate(self.waiting_on):
            if count:
                self.job(
                    t, "sold_out", [(self.bookings[proc], count * unit.booking, 0.0, False)], None
                )
        per_gateway = waiting / len(self.gateways)
        for gateway in self.gateways:
            self.job(t, "sold_out", [(gateway, per_gateway * unit.gateway, 0.0, False)], None)
        self.waiting_on = [0] * len(self.bookings)

    def leave(self, t: float, buyer: int) -> None:
        if self.state[buyer] == WAITING:
            self.state[buyer] = FINISHED
            self.waiting_on[self.proc[buyer]] -= 1
            self.counts["left_queue"] = self.counts.get("left_queue", 0) + 1

    def pass_expiry(self, t: float, buyer: int) -> None:
        if self.state[buyer] == ADMITTED:  # never reserved: the slot frees up
            self.state[buyer] = FINISHED
            self.live_passes -= 1
            self.passes_lapsed += 1

    def lapse(self, t: float, buyer: int) -> None:
        self.held -= self.qty[buyer]
        self.available += self.qty[buyer]
        self.state[buyer] = FINISHED
        self.counts["lapsed"] = self.counts.get("lapsed", 0) + 1

    # -- position refresh -----------------------------------------------------------------------
    def progress(self, t: float, proc: int) -> None:
        """The feed's `progress` reached booking process `proc`'s board."""
        if self.round_active[proc]:
            self.round_pending[proc] = True
        elif self.waiting_on[proc] > 0:
            self.round_active[proc] = True
            self.round_started[proc] = t
            self.refresh_batch(t, proc, self.waiting_on[proc])

    def refresh_batch(self, t: float, proc: int, left: int) -> None:
        size = min(BATCH, left)
        unit = self.u["refresh"]
        path = [
            (self.bookings[proc], size * unit.booking, 0.0, False),
            (self.shards[0], size * unit.event_shard, 1.0, False),
        ]
        self.push(
            t, VISIT, ["refresh", (proc, size, left - size), path, 0, t, -1, -1]
        )  # t may be ahead of now (a tick's end)

    def refresh_batch_done(self, t: float, tag: tuple[int, int, int]) -> None:
        proc, size, left = tag
        self.position_events += size
        gateway = self.gateways[(proc + self.position_events // BATCH) % len(self.gateways)]
        self.job(t, "refresh", [(gateway, size * self.u["refresh"].gateway, 0.0, False)], None)
        left = min(left, self.waiting_on[proc])
        if left > 0:
            self.refresh_batch(t, proc, left)
            return
        self.round_active[proc] = False
        self.round_seconds.append(t - self.round_started[proc])
        if self.round_pending[proc]:
            self.round_pending[proc] = False
            self.progress(t, proc)

    # -- the report -----------------------------------------------------------------------------
    def report(self, last_join: float) -> dict[str, Any]:
        c = self.c
        storm_end = max(c.join_window, last_join)
        windows = dict(zip(WINDOWS, [(0.0, storm_end), (storm_end, storm_end + 60.0)], strict=True))
        groups: dict[str, list[Station]] = {
            "gateway": self.gateways,
            "booking": self.bookings,
            "redis event shard": [self.shards[0]],
            "redis other shards": self.shards[1:],
            "postgres": [self.postgres],
        }
        stations: dict[str, Any] = {}
        for name, members in groups.items():
            if not members:
                continue
            row: dict[str, Any] = {"processes": len(members), "servers_each": members[0].servers}
            for label, (start, stop) in windows.items():
                utils = [m.utilisation(start, stop) for m in members]
                offered = [m.offered_load(start, stop) for m in members]
                row[label] = {
                    "utilisation_mean": round(sum(utils) / len(utils), 3),
                    "utilisation_max": round(max(utils), 3),
                    "offered_max": round(max(offered), 3),
                }
            peaks = [m.peak() for m in members]
            best = max(peaks)
            row["peak_1s_utilisation"] = round(best[0], 3)
            row["peak_at_s"] = best[1]
            busy: dict[str, float] = {}
            for m in members:
                for kind, seconds in m.by_kind.items():
                    busy[kind] = busy.get(kind, 0.0) + seconds
            total = sum(busy.values()) or 1.0
            row["busy_share_by_kind"] = {
                k: round(v / total, 3) for k, v in sorted(busy.items(), key=lambda kv: -kv[1])
            }
            stations[name] = row
        shards = []
        for shard in self.shards:
            peak_ops = max(shard.calls, default=0.0)
            shards.append(
                {
                    "shard": shard.name,
                    "peak_ops_per_s": round(peak_ops),
                    "peak_1s_utilisation": round(shard.peak()[0], 3),
                    "join_storm_utilisation": round(shard.utilisation(0.0, storm_end), 3),
                }
            )
        pg = {
            kind: {"commits": round(v[0]), "rows": round(v[1]), "outbox": round(v[2])}
            for kind, v in self.pg_by_kind.items()
        }
        rates: dict[str, Any] = {}
        self.per_second["stream"] = self.per_second.get("join", {})  # opened right after
        for kind, (first, last) in self.activity.items():
            count = self.counts.get(kind, 0)
            unit = self.u[kind]
            peak = max(self.per_second.get(kind, {0: 0}).values())
            writes = kind in PG_KINDS
            rates[kind] = {
                "requests": count,
                "first_s": round(first, 1),
                "last_s": round(last, 1),
                "peak_per_s": peak,
                "pg_transactions_at_peak": round(peak * unit.commits) if writes else 0,
                "pg_rows_at_peak": round(peak * unit.rows) if writes else 0,
                "broker_messages_at_peak": round(peak * unit.outbox, 1) if writes else 0.0,
            }
        return {
            "config": asdict(c),
            "outcome": {
                "seats": c.seats,
                "sold": self.sold,
                "held_at_end": self.held,
                "available_at_end": self.available,
                "admitted": self.admitted,
                "passes_lapsed_unused": self.passes_lapsed,
                "sold_out_at_s": None if self.sold_out_at is None else round(self.sold_out_at, 1),
                "ticks": self.ticks,
                "position_events": self.position_events,
                **{k: v for k, v in sorted(self.counts.items())},
            },
            "latency_s": {
                **{kind: _summary(values) for kind, values in self.latency.items() if values},
                "queue wait (join -> pass)": _summary(self.queue_wait),
                "pass delivery (admitted -> pass)": _summary(self.pass_delay),
                "refresh round (a process's waiting streams)": _summary(self.round_seconds),
            },
            "stations": stations,
            "shards": shards,
            "rates": rates,
            "postgres_totals": pg,
            "saturates_first": self.first_saturation(groups),
        }

    def first_saturation(self, groups: Mapping[str, list[Station]]) -> dict[str, Any] | None:
        """The first 1-s bucket in which a station is busy >= SATURATED or is offered more
        work than it can do; the station and what it was busy with overall."""
        found: tuple[int, float, str, Station] | None = None
        for name, members in groups.items():
            for m in members:
                for bucket in range(max(len(m.busy), len(m.offered))):
                    busy = m.busy[bucket] / m.servers if bucket < len(m.busy) else 0.0
                    offered = m.offered[bucket] / m.servers if bucket < len(m.offered) else 0.0
                    if busy >= SATURATED or offered > 1.0:
                        if found is None or bucket < found[0]:
                            found = (bucket, max(busy, offered), name, m)
                        break
        if found is None:
            return None
        bucket, load, name, station = found
        total = sum(station.by_kind.values()) or 1.0
        top = max(station.by_kind.items(), key=lambda kv: kv[1])
        return {
            "station": name,
            "process": station.name,
            "at_s": bucket,
            "load_in_that_second": round(load, 3),
            "mostly": top[0],
            "mostly_share": round(top[1] / total, 3),
        }


def _summary(values: Sequence[float]) -> dict[str, float | int | None]:
    def r(v: float | None) -> float | None:
        return None if v is None else round(v, 3)

    return {
        "n": len(values),
        "p50": r(_pct(values, 0.5)),
        "p95": r(_pct(values, 0.95)),
        "p99": r(_pct(values, 0.99)),
        "max": r(max(values, default=None)),
    }


TARGET = 0.7  # utilisation a process is planned for in the phase table


def phase_table(c: Config, costs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The capacity model without queueing: per phase, the work per second each kind of process
    gets at the phase's rate (measured µs x rate), and processes needed at TARGET utilisation.
    The event's shard cannot be split: its figure is a utilisation that must stay below 1."""
    u = {
        kind: unit if kind in PG_KINDS else Unit(**{**asdict(unit), "commits": 0.0, "rows": 0.0})
        for kind, unit in unit_costs(costs).items()
    }  # only reserve and pay write: the others' measured transactions are background reads
    stream = costs["kinds"]["stream"]["bytes_per_stream"]
    joins = c.buyers / c.join_window
    admits = c.release_per_tick / c.tick
    paying = 1 - c.leave_share - c.lapse_share
    # the event's shard also holds its share of users' keys, unless they live elsewhere
    spread_share = 0.0 if c.separate_spread and c.shards > 1 else 1 / max(c.shards, 1)

    def row(
        phase: str, rate: str, parts: Sequence[tuple[Unit, float]], note: str = ""
    ) -> dict[str, Any]:
        gw = sum(unit.gateway * n for unit, n in parts)
        bk = sum(unit.booking * n for unit, n in parts)
        ev = sum(unit.event_shard * n for unit, n in parts)
        sp = sum(unit.spread * n for unit, n in parts)
        calls = sum((unit.event_calls + unit.spread_calls * spread_share) * n for unit, n in parts)
        return {
            "phase": phase,
            "rate": rate,
            "gateway_cores": round(gw, 2),
            "gateways_needed": math.ceil(gw / TARGET),
            "booking_cores": round(bk, 2),
            "booking_needed": math.ceil(bk / TARGET),
            "event_shard_utilisation": round(ev + sp * spread_share, 2),
            "event_shard_calls_per_s": round(calls),
            "spread_redis_cores": round(sp, 2),
            "pg_transactions_per_s": round(sum(unit.commits * n for unit, n in parts)),
            "pg_rows_per_s": round(sum(unit.rows * n for unit, n in parts)),
            "broker_messages_per_s": round(sum(unit.outbox * n for unit, n in parts)),
            "note": note,
        }

    waiting = c.buyers * (1 - c.leave_share)
    memory = waiting * (stream["gateway"] + stream["booking"]) / 2**30
    return [
        row(
            "join storm",
            f"{joins:,.0f} joins/s + as many stream opens/s",
            [(u["join"], joins), (u["stream"], joins)],
        ),
        row(
            "waiting (position refresh)",
            f"{waiting:,.0f} open streams, one refresh each per admitting tick",
            [(u["refresh"], waiting / c.tick)],
            f"memory: {memory:,.1f} GiB of stream state (gateways + booking processes)",
        ),
        row("admission", f"{admits:,.0f} passes/s", [(u["pass"], admits)]),
        row("reserve", f"{admits:,.0f} reserves/s", [(u["reserve"], admits)]),
        row("payment", f"{admits * paying:,.0f} payments/s", [(u["pay"], admits * paying)]),
    ]


def render_phases(rows: Sequence[Mapping[str, Any]]) -> str:
    lines = [
        f"phase table (measured µs x rate; processes at {TARGET:.0%} utilisation; the event's "
        "shard is one Redis thread and cannot be split):",
        "| phase | rate | gateway cores (procs) | booking cores (procs) | event shard util | event "
        "shard calls/s | other Redis cores | PG transactions/s | PG rows/s | broker msgs/s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['phase']} | {r['rate']} | {r['gateway_cores']} ({r['gateways_needed']}) | "
            f"{r['booking_cores']} ({r['booking_needed']}) | {r['event_shard_utilisation']} | "
            f"{r['event_shard_calls_per_s']:,} | {r['spread_redis_cores']} | "
            f"{r['pg_transactions_per_s']:,} | {r['pg_rows_per_s']:,} | "
            f"{r['broker_messages_per_s']:,} |"
        )
    notes = [r["note"] for r in rows if r["note"]]
    return "\n".join(lines + [f"({note})" for note in notes])


def simulate(config: Config, costs: Mapping[str, Any]) -> dict[str, Any]:
    result = Drop(config, unit_costs(costs)).run()
    result["costs_measured_at"] = costs.get("measured_at")
    result["phases"] = phase_table(config, costs)
    return result


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if value < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def render(result: Mapping[str, Any], units: Mapping[str, Unit]) -> str:
    c = result["config"]
    lines = [
        f"drop: {c['buyers']:,} buyers joining over {c['join_window']:.0f} s for {c['seats']:,} "
        f"seats; {c['gateways']} gateways, {c['booking']} booking processes, {c['shards']} Redis "
        f"shards, PostgreSQL {c['pg_cores']} cores; queue {c['release_per_tick']}/tick every "
        f"{c['tick']} s, max_concurrent {c['max_concurrent']}, pass_ttl {c['pass_ttl']:.0f} s; "
        f"seed {c['seed']} (costs measured {result.get('costs_measured_at')})",
        "",
        "unit costs (µs per request; refresh = per waiting stream per tick):",
        "| kind | gateway | booking | Redis event shard | Redis spread | PostgreSQL |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for kind, unit in units.items():
        lines.append(
            f"| {kind} | {unit.gateway * 1e6:.1f} | {unit.booking * 1e6:.1f} | "
            f"{unit.event_shard * 1e6:.1f} | {unit.spread * 1e6:.1f} | {unit.postgres * 1e6:.1f} |"
        )
    lines += ["", "outcome:"]
    lines += [f"  {k}: {_fmt(v)}" for k, v in result["outcome"].items()]
    lines += [
        "",
        "latency (s):",
        "| | n | p50 | p95 | p99 | max |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, s in result["latency_s"].items():
        lines.append(
            f"| {name} | {_fmt(s['n'])} | {_fmt(s['p50'])} | {_fmt(s['p95'])} | "
            f"{_fmt(s['p99'])} | {_fmt(s['max'])} |"
        )
    windows = list(WINDOWS)
    head = " | ".join(f"{w}: util mean / max (offered max)" for w in windows)
    lines += ["", "stations:", f"| station | n | {head} | peak 1 s (at s) | busy with |"]
    lines.append("|---|---:|" + "---|" * len(windows) + "---|---|")
    for name, row in result["stations"].items():
        cells = " | ".join(
            f"{row[w]['utilisation_mean']:.2f} / {row[w]['utilisation_max']:.2f} "
            f"({row[w]['offered_max']:.2f})"
            for w in windows
        )
        kinds = ", ".join(f"{k} {v:.0%}" for k, v in list(row["busy_share_by_kind"].items())[:4])
        lines.append(
            f"| {name} | {row['processes']} | {cells} | {row['peak_1s_utilisation']:.2f} "
            f"({row['peak_at_s']}) | {kinds} |"
        )
    lines += ["", "Redis shards:", "| shard | peak calls/s | peak 1 s util | join storm util |"]
    lines.append("|---|---:|---:|---:|")
    for s in result["shards"]:
        lines.append(
            f"| {s['shard']} | {s['peak_ops_per_s']:,} | {s['peak_1s_utilisation']:.2f} | "
            f"{s['join_storm_utilisation']:.2f} |"
        )
    lines += ["", "request rates (peak = busiest second) and what they write at that peak:"]
    lines.append(
        "| kind | requests | first s | last s | peak per s | PG transactions/s | PG rows/s "
        "| broker msgs/s |"
    )
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for kind, r in result["rates"].items():
        lines.append(
            f"| {kind} | {r['requests']:,} | {r['first_s']} | {r['last_s']} | "
            f"{r['peak_per_s']:,} | {r['pg_transactions_at_peak']:,} | {r['pg_rows_at_peak']:,} "
            f"| {r['broker_messages_at_peak']} |"
        )
    first = result["saturates_first"]
    lines.append("")
    if first is None:
        lines.append("saturates first: nothing reached saturation")
    else:
        lines.append(
            f"saturates first: {first['station']} ({first['process']}) at t = {first['at_s']} s "
            f"(load {first['load_in_that_second']:.2f} in that second); overall busiest with "
            f"{first['mostly']} ({first['mostly_share']:.0%} of its work)"
        )
    return "\n".join(lines)


def parse(argv: Sequence[str] | None = None) -> tuple[Config, Path, bool]:
    defaults = Config()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name, value in asdict(defaults).items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            parser.add_argument(flag, action="store_true", help="off unless given")
        else:
            parser.add_argument(flag, type=type(value), default=value, help=f"default {value}")
    parser.add_argument("--costs", type=Path, default=COSTS, help="costs.json to read")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = vars(parser.parse_args(argv))
    costs, as_json = args.pop("costs"), args.pop("json")
    return Config(**args), costs, as_json


def main(argv: Sequence[str] | None = None) -> None:
    config, costs_path, as_json = parse(argv)
    costs = json.loads(costs_path.read_text())
    result = simulate(config, costs)
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        print(render(result, unit_costs(costs)))
        print()
        print(render_phases(result["phases"]))


if __name__ == "__main__":
    main()
