"""The event loop of `python -m loadtests.simulate`: one simulated drop (buyers, the queue,
the stations), ending in the report `simulate_report.drop_report` builds."""

from __future__ import annotations

import heapq
import itertools
import random
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from loadtests.simulate_model import BATCH, EFFECTS, PG_KINDS, Config, Station, Unit
from loadtests.simulate_report import drop_report

Visit = tuple[Station, float, float, bool]  # station, service s, Redis calls, served at once
# event codes
VISIT, DONE, TICK, LEAVE, LAPSE, PASS_EXPIRY, THINK_RESERVE, THINK_PAY = range(8)
# buyer states
JOINING, WAITING, ADMITTED, HOLDING, FINISHED = range(5)


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
        return drop_report(self, arrivals[-1] if arrivals else 0.0)

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
