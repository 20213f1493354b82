"""`make chaos`: a small ticket drop per scenario, one fault injected mid-drop, then an audit.

    python -m loadtests.chaos [--scenarios booking-kill,redis-wipe] [--users 60] [--seats 40]
                              [--duration 20] [--out loadtests/results/chaos.json]

For each scenario: a stack of its own (`stack.supervisor.Stack` with its own Redis, PostgreSQL and
broker, under `.run/chaos/<scenario>/`, so the faults may kill them), short hold and saga timeouts
(HOLD_TTL_S 20, SAGA_TIMEOUT_S 8) so it settles fast, a published event with the queue on, and a
lean asyncio buyer loop (no locust): each buyer joins the queue, polls for its pass, reserves
with an `Idempotency-Key`, pays with the mock provider (mostly `succeed`, some `decline` and
`no_answer`, some let the hold lapse) and polls its booking; like a real client it retries a
request (same key) on 429/502/503/504 and connection errors, honouring `Retry-After`.
The buyers arrive over `--duration` seconds; the fault hits at 40 % of it. Then the auditor
(`loadtests/audit.py`) lets things settle (bounded), measures, the stack is stopped, and one row
per scenario is printed. Exit 1 on any violation (see `violations()`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import json
import os
import random
import shutil
import signal
import sys
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import httpx

from loadtests.audit import Audit, audit_event, settle
from loadtests.drop_setup import DropSettings, create_plan
from loadtests.target import Target

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "loadtests" / "results"
API = "/api/v1"
READY_LIMIT_S = 30.0
STOP_LIMIT_S = 10.0
JOURNEY_LIMIT_S = 90.0  # one buyer's whole journey (queue, reserve, pay, confirmation)
RETRY_STATUSES = {429, 502, 503, 504}
BUSINESS_409 = {"sold_out", "seat_unavailable", "user_limit_exceeded"}
SAGA_WORKERS = ("saga-orchestrator", "saga-step")
WORKERS = (
    "outbox-relay",
    "seat-release",
    "reconciler",
    "saga-orchestrator",
    "saga-step",
    "queue-release",
)


@dataclass(frozen=True)
class Fault:
    """One fault: `kind` process (SIGKILL `target`), server (kill `target`, maybe wiped), or
    rebalance (a second copy of each of `copies`, stopped again a while later)."""

    kind: str
    target: str = ""
    wipe: bool = False
    copies: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.kind == "process":
            return f"SIGKILL {self.target}"
        if self.kind == "server":
            return f"kill {self.target}" + (" (back empty)" if self.wipe else " (data kept)")
        return "second copy of " + ", ".join(self.copies)


SCENARIOS: dict[str, Fault] = {
    "booking-kill": Fault("process", "booking"),
    "gateway-kill": Fault("process", "gateway"),
    **{f"{worker}-kill": Fault("process", worker) for worker in WORKERS},
    "redis-restart": Fault("server", "redis"),
    "redis-wipe": Fault("server", "redis", wipe=True),
    "broker-restart-empty": Fault("server", "kafka", wipe=True),
    "postgres-restart": Fault("server", "postgres"),
    "rebalance": Fault("rebalance", copies=SAGA_WORKERS),
}


@dataclass(frozen=True)
class ChaosConfig:
    users: int = 60
    seats: int = 60
    duration_s: float = 20.0  # buyers arrive over this; the fault hits at fault_at of it
    fault_at: float = 0.4
    hold_ttl_s: int = 20
    saga_timeout_s: int = 8
    run_root: Path = ROOT / ".run" / "chaos"
    seed: int = 12
    settle_s: float = 0.0  # 0: 2 x SAGA_TIMEOUT_S + 20
    # Shares of buyers (the rest pay `succeed`).
    decline_share: float = 0.10
    no_answer_share: float = 0.08
    lapse_share: float = 0.10

    @property
    def settle_bound_s(self) -> float:
        return self.settle_s or self.saga_timeout_s * 2 + 20.0


def say(scenario: str, text: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {scenario}: {text}", flush=True)


# --- the buyers ------------------------------------------------------------------------------


@dataclass
class DropStats:
    outcomes: Counter[str] = field(default_factory=Counter)
    answers: Counter[str] = field(default_factory=Counter)  # "route status" of retried answers
    reserve_failed: int = 0  # buyers whose reserve ended in a non-business error
    reserve_retried_errors: int = 0  # 5xx / connection errors answered to reserves (retried)
    confirmed: int = 0


class Buyers:
    """The drop's buyers against the gateway; each one journey, arriving over the duration."""

    def __init__(
        self, gateway_url: str, plan: Mapping[str, Any], config: ChaosConfig, rng: random.Random
    ) -> None:
        self.base = gateway_url.rstrip("/") + API
        self.plan = plan
        self.event = plan["event"]
        self.config = config
        self.rng = rng
        self.stats = DropStats()
        self.http: httpx.AsyncClient | None = None

    async def call(
        self,
        method: str,
        path: str,
        route: str,
        token: str,
        *,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        deadline_s: float = 30.0,
    ) -> tuple[int, dict[str, Any]]:
        """One request, retried like a careful client; (status, body). 599 = no answer."""
        assert self.http is not None
        all_headers = {"Authorization": f"Bearer {token}", **(headers or {})}
        deadline = time.monotonic() + deadline_s
        delay = 0.25
        while True:
            try:
                answer = await self.http.request(
                    method, self.base + path, json=body, headers=all_headers
                )
                status = answer.status_code
                try:
                    data = answer.json() if answer.content else {}
                except ValueError:
                    data = {"text": answer.text[:200]}
                if not isinstance(data, dict):
                    data = {"value": data}
                retry_after = answer.headers.get("Retry-After")
            except httpx.TransportError as error:
                status, data, retry_after = 599, {"error": type(error).__name__}, None
            in_flight = status == 409 and data.get("code") == "idempotency_in_flight"
            if status not in RETRY_STATUSES and status != 599 and not in_flight:
                return status, data
            self.stats.answers[f"{route} {status}"] += 1
            if route == "reserve" and status >= 500:
                self.stats.reserve_retried_errors += 1
            if time.monotonic() > deadline:
                return status, data
            try:
                wait = float(retry_after) if retry_after else delay
            except ValueError:
                wait = delay
            await asyncio.sleep(min(max(wait, 0.1), 3.0))
            delay = min(delay * 2, 2.0)

    async def run(self) -> DropStats:
        buyers = self.plan["buyers"]
        spacing = self.config.duration_s / max(1, len(buyers))
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=100)
        async with httpx.AsyncClient(timeout=15.0, limits=limits) as http:
            self.http = http
            tasks = []
            for index, buyer in enumerate(buyers):
                plays = self._draw()
                tasks.append(asyncio.create_task(self._journey(buyer, plays, index * spacing)))
            await asyncio.gather(*tasks)
        self.http = None
        return self.stats

    def _draw(self) -> str:
        c, draw = self.config, self.rng.random()
        for name, share in (
            ("decline", c.decline_share),
            ("no_answer", c.no_answer_share),
            ("lapse", c.lapse_share),
        ):
            if draw < share:
                return name
            draw -= share
        return "succeed"

    async def _journey(self, buyer: Mapping[str, Any], plays: str, start_in: float) -> None:
        await asyncio.sleep(start_in)
        token = buyer["token"]
        try:
            outcome = await asyncio.wait_for(self._buy(token, plays), timeout=JOURNEY_LIMIT_S)
        except TimeoutError:
            outcome = "journey_timeout"
        except Exception as error:  # a buyer's bug must not end the drop
            outcome = f"crashed_{type(error).__name__}"
        self.stats.outcomes[outcome] += 1

    async def _pass(self, token: str) -> str | None:
        """Join the queue and poll until admitted; None when sold out or waited too long."""
        event_id = self.event["event_id"]
        status, body = await self.call(
            "POST", "/queue/join", "join", token, body={"event_id": event_id}
        )
        if status == 409 and body.get("code") == "sold_out":
            return None
        if status != 202:
            raise _Outcome(f"join_{status}")
        deadline = time.monotonic() + 40
        polls = sold_out_seen = 0
        while time.monotonic() < deadline:
            if body.get("status") == "admitted":
                return str(body["queue_pass"])
            await asyncio.sleep(0.5)
            status, body = await self.call("GET", f"/queue/position/{event_id}", "position", token)
            if status == 404:  # our place was lost (Redis came back empty): join again
                status, body = await self.call(
                    "POST", "/queue/join", "join", token, body={"event_id": event_id}
                )
                if status == 409 and body.get("code") == "sold_out":
                    return None
            polls += 1
            if polls % 4 == 0:
                sold_out_seen = sold_out_seen + 1 if await self._sold_out(token) else 0
                if sold_out_seen >= 3:
                    break
        await self.call("DELETE", f"/queue/position/{event_id}", "leave", token)
        return None

    async def _sold_out(self, token: str) -> bool:
        status, body = await self.call(
            "GET", f"/events/{self.event['event_id']}/availability", "availability", token
        )
        return status == 200 and all(z["available"] <= 0 for z in body.get("zones", []))

    def _reserve_body(self, zone: Mapping[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {"event_id": self.event["event_id"], "zone_id": zone["zone_id"]}
        count = self.rng.randint(1, 2)
        if zone.get("seats"):
            body["seats"] = self.rng.sample(zone["seats"], min(count, len(zone["seats"])))
        else:
            body["quantity"] = count
        return body

    async def _reserve(self, token: str) -> dict[str, Any] | None:
        """A booking, or None (sold out); a non-business failure raises _Outcome."""
        rejoins = 0
        queue_pass = await self._pass(token)
        if queue_pass is None:
            raise _Outcome("sold_out_in_queue")
        zones = sorted(self.event["zones"], key=lambda _: self.rng.random())
        attempts = [zones[0]] * 3 + zones[1:]
        for zone in attempts:
            status, body = await self.call(
                "POST",
                "/bookings/reserve",
                "reserve",
                token,
                body=self._reserve_body(zone),
                headers={"X-Queue-Pass": queue_pass, "Idempotency-Key": uuid.uuid4().hex},
            )
            if status == 201:
                return body
            code = body.get("code")
            if status == 409 and code in BUSINESS_409:
                continue
            if status == 403 and code in {"queue_pass_invalid", "queue_pass_required"}:
                rejoins += 1  # the pass was lost or lapsed: queue again, as a buyer would
                queue_pass = await self._pass(token) if rejoins <= 2 else None
                if queue_pass is not None:
                    continue
            self.stats.reserve_failed += 1
            raise _Outcome(f"reserve_failed_{status}_{code}")
        return None

    async def _buy(self, token: str, plays: str) -> str:
        try:
            booking = await self._reserve(token)
        except _Outcome as outcome:
            return outcome.name
        if booking is None:
            with contextlib.suppress(Exception):
                await self.call(
                    "DELETE", f"/queue/position/{self.event['event_id']}", "leave", token
                )
            return "sold_out"
        if plays == "lapse":
            return "let_hold_lapse"
        status, payment = await self.call(
            "POST",
            "/payments",
            "pay",
            token,
            body={"booking_id": booking["booking_id"], "test_outcome": plays},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        if status != 201:
            return f"pay_failed_{status}_{payment.get('code')}"
        if plays != "succeed":
            return f"paid_{plays}"
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            status, body = await self.call(
                "GET", f"/bookings/{booking['booking_id']}", "booking", token
            )
            booked = body.get("status") if status == 200 else None
            if booked == "CONFIRMED":
                self.stats.confirmed += 1
                return "confirmed"
            if booked in {"CANCELLED", "EXPIRED", "REFUNDED"}:
                return f"paid_but_{booked.lower()}"
        return "paid_not_confirmed_in_45s"


class _Outcome(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


# --- the stack and its faults ----------------------------------------------------------------


def chaos_env(config: ChaosConfig, scenario: str) -> dict[str, str]:
    """The chaos stack's environment: the caller's, without server addresses, short timeouts."""
    from common.tokens import generate_secret

    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"REDIS_URL", "DATABASE_URL", "KAFKA_BOOTSTRAP", "BOOKING_URL"}
    }
    env.update(
        {
            "HOLD_TTL_S": str(config.hold_ttl_s),
            "SAGA_TIMEOUT_S": str(config.saga_timeout_s),
            "RATE_LIMIT_PER_IP": "100000",
            "RATE_LIMIT_PER_USER": "1000",
            "RATE_LIMIT_AUTH_PER_IP": "1000",
            "KAFKA_SESSION_TIMEOUT_MS": "3000",
            "KAFKA_NAMESPACE": f"chaos{uuid.uuid4().hex[:8]}",
            "MOCK_PAYMENT_DELAY_S": "0.2",
            "BOOKING_REPLICAS": env.get("BOOKING_REPLICAS") or "2",
            "LOG_LEVEL": "WARNING",
            "JWT_SECRET": generate_secret(),
            "INTERNAL_SECRET": generate_secret(),
            "ADMIN_EMAIL": f"admin@{scenario}.chaos.local",
            "ADMIN_PASSWORD": f"{scenario}-chaos-admin",
        }
    )
    return env


def build_stack(run_dir: Path, env: dict[str, str], console: Any) -> Any:
    """A `Stack` that owns its servers (the hooks may kill them), on free loopback ports."""
    from stack.processes import free_port, free_port_block
    from stack.specs import StackSettings
    from stack.supervisor import Stack

    settings = StackSettings.from_env(env)
    fields = {
        "gateway_port": free_port(),
        "booking_port": free_port_block(8),
        "metrics_base_port": free_port_block(16),
        "admin_email": env["ADMIN_EMAIL"],
        "admin_password": env["ADMIN_PASSWORD"],
        "database_name": "booking_rush_chaos",
    }
    settings = dataclasses.replace(settings, **fields)
    kwargs: dict[str, Any] = {}
    if "own_servers" in inspect.signature(Stack.__init__).parameters:
        kwargs["own_servers"] = True
    else:  # an older Stack: make the configured servers unreachable so it starts its own
        env.update(
            {
                "REDIS_URL": "redis://127.0.0.1:1/0",
                "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/booking_rush_chaos",
                "KAFKA_BOOTSTRAP": "127.0.0.1:1",
            }
        )
    return Stack(run_dir, env, settings=settings, console=console, **kwargs)


def ready_urls(stack: Any) -> list[str]:
    """`/api/v1/ready` of the gateway and of every booking process the stack runs."""
    urls = []
    for spec in stack.specs:
        health = getattr(spec, "health_url", None)
        if health and health.endswith("/health"):
            urls.append(health.removesuffix("/health") + "/ready")
    return urls


async def all_ready(http: httpx.AsyncClient, urls: list[str]) -> bool:
    async def one(url: str) -> bool:
        try:
            return (await http.get(url, timeout=2.0)).status_code == 200
        except httpx.HTTPError:
            return False

    return all(await asyncio.gather(*(one(url) for url in urls)))


async def time_to_ready(urls: list[str], since: float, limit_s: float = 60.0) -> float | None:
    """Seconds from `since` (monotonic) until every ready URL answers 200; None past limit_s."""
    async with httpx.AsyncClient() as http:
        while time.monotonic() - since < limit_s:
            if await all_ready(http, urls):
                return round(time.monotonic() - since, 2)
            await asyncio.sleep(0.2)
    return None


def _hook(stack: Any, name: str) -> Callable[..., Any]:
    hook = getattr(stack, name, None)
    if hook is None:
        raise RuntimeError(f"the stack has no `{name}` hook (stack supervision not there yet)")
    return hook  # type: ignore[no-any-return]


def inject(stack: Any, fault: Fault) -> list[str]:
    """Inject the fault now; the copies a rebalance started (to stop later)."""
    if fault.kind == "process":
        if hasattr(stack, "kill_process"):
            stack.kill_process(fault.target, signal.SIGKILL)
        else:
            pid = stack.pids()[fault.target]
            os.killpg(pid, signal.SIGKILL)
        return []
    if fault.kind == "server":
        if hasattr(stack, "kill_server"):
            stack.kill_server(fault.target, wipe=fault.wipe)
        else:  # an older Stack: kill the server it recorded; nothing will restart it
            from stack.servers.base import ServerRecord

            record = ServerRecord.read(Path(stack.run_dir) / fault.target)
            if record is None:
                raise RuntimeError(f"no {fault.target} server recorded and no kill_server hook")
            os.kill(record.pid, signal.SIGKILL)
        return []
    start_copy = _hook(stack, "start_copy")
    return [str(start_copy(name)) for name in fault.copies]


def stop_figures(stack: Any) -> tuple[dict[str, float], list[str], str | None]:
    """({name: seconds to exit}, names that needed SIGKILL or took > 10 s, problem reading it).

    `stack.stop_report[name]` is read as a mapping or an object with the seconds from SIGTERM
    to exit and whether SIGKILL was needed (names tried: seconds/elapsed_s/...,
    sigkill/killed/needed_sigkill/...)."""
    report = getattr(stack, "stop_report", None)
    if report is None:
        return {}, [], "the stack has no stop_report (cannot tell who ignored SIGTERM)"
    seconds: dict[str, float] = {}
    stubborn: list[str] = []
    for name, entry in dict(report).items():
        values = entry if isinstance(entry, Mapping) else getattr(entry, "__dict__", {})
        if isinstance(entry, tuple | list) and len(entry) >= 2:
            values = {"seconds": entry[0], "sigkill": entry[1]}
        took = next(
            (values[k] for k in ("seconds", "elapsed_s", "seconds_to_exit", "took_s", "elapsed")
             if k in values),
            None,
        )  # fmt: skip
        killed = next(
            (values[k] for k in ("sigkill", "killed", "needed_sigkill", "sigkilled", "kill")
             if k in values),
            False,
        )  # fmt: skip
        if took is not None:
            seconds[name] = round(float(took), 2)
        if killed or (took is not None and float(took) > STOP_LIMIT_S):
            stubborn.append(name)
    return seconds, stubborn, None


# --- one scenario ----------------------------------------------------------------------------


@dataclass
class Row:
    scenario: str
    fault: str
    users: int
    seats: int
    error: str | None = None
    fault_at_s: float | None = None
    ready_s: float | None = None
    settled: bool = False
    settle_s: float | None = None
    still_moving: list[str] = field(default_factory=list)
    audit: dict[str, Any] = field(default_factory=dict)
    drop: dict[str, Any] = field(default_factory=dict)
    stop_s: dict[str, float] = field(default_factory=dict)
    sigterm_ignored: list[str] = field(default_factory=list)
    stop_problem: str | None = None
    violations: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def violations(row: Row) -> list[str]:
    """What makes a row fail (empty: the scenario passed)."""
    found: list[str] = []
    if row.error:
        found.append(f"scenario error: {row.error}")
    a = row.audit
    for key, label in (
        ("oversell", "oversell"),
        ("capacity_breaks", "available+held+sold != capacity"),
        ("drift", "drift at the end"),
        ("money_violations", "money violations"),
        ("pending", "payments PENDING after settlement"),
        ("paid_holds_lost", "paid holds lost"),
        ("overdue_reserved", "bookings RESERVED past deadline"),
    ):
        if a.get(key):
            found.append(f"{label}: {a[key]}")
    if row.fault_at_s is not None and (row.ready_s is None or row.ready_s > READY_LIMIT_S):
        found.append(f"not ready within {READY_LIMIT_S:.0f} s of the fault ({row.ready_s})")
    if row.sigterm_ignored:
        found.append("needed SIGKILL / > 10 s to stop: " + ", ".join(row.sigterm_ignored))
    if row.stop_problem:
        found.append(row.stop_problem)
    if row.scenario == "booking-kill" and row.drop.get("reserve_failed"):
        found.append(f"failed reserves: {row.drop['reserve_failed']}")
    if not row.error and row.audit and not row.drop.get("confirmed"):
        found.append("the drop confirmed no booking")
    return found


async def _drive(stack: Any, row: Row, fault: Fault, config: ChaosConfig) -> None:
    """Plan, buyers, the fault mid-drop, settlement and the audit."""
    endpoints = stack.endpoints
    gateway_url = stack.settings.gateway_url
    target = Target(gateway_url, endpoints.database_url, stack.env["JWT_SECRET"])
    queue_outflow = max(10, config.users // 3)
    drop = DropSettings(
        users=config.users,
        seats=config.seats,
        max_concurrent=queue_outflow,
        release_per_tick=queue_outflow,
        pass_ttl_s=30,
        login_share=0.0,
    )
    plan = await create_plan(target, drop)
    event_id = plan["event"]["event_id"]
    say(row.scenario, f"event {event_id[:8]}: {config.users} buyers over {config.duration_s:.0f} s")
    buyers = Buyers(gateway_url, plan, config, random.Random(config.seed))
    started = time.monotonic()
    drop_task = asyncio.create_task(buyers.run())
    urls = ready_urls(stack)
    copies: list[str] = []
    try:
        await asyncio.sleep(config.duration_s * config.fault_at)
        fault_time = time.monotonic()
        row.fault_at_s = round(fault_time - started, 2)
        copies = await asyncio.to_thread(inject, stack, fault)
        say(row.scenario, f"fault injected at {row.fault_at_s:.1f} s: {fault.describe()}")
        ready_task = asyncio.create_task(time_to_ready(urls, fault_time))
        if copies:
            await asyncio.sleep(max(3.0, config.duration_s * 0.3))
            for copy in copies:
                await asyncio.to_thread(_hook(stack, "stop_copy"), copy)
            say(row.scenario, "copies stopped: " + ", ".join(copies))
        row.ready_s = await ready_task
        say(row.scenario, f"ready again after {row.ready_s} s")
        stats = await drop_task
    finally:
        if not drop_task.done():
            drop_task.cancel()
            with contextlib.suppress(BaseException):
                await drop_task
    row.drop = {
        "outcomes": dict(stats.outcomes),
        "confirmed": stats.confirmed,
        "reserve_failed": stats.reserve_failed,
        "reserve_retried_errors": stats.reserve_retried_errors,
        "retried_answers": dict(stats.answers),
        "seconds": round(time.monotonic() - started, 1),
    }
    say(row.scenario, f"drop done in {row.drop['seconds']} s: {dict(stats.outcomes)}; settling")
    row.settled, settle_s, row.still_moving = await settle(
        endpoints.database_url,
        endpoints.redis_url,
        event_id,
        bound_s=config.settle_bound_s,
        progress=lambda text: say(row.scenario, text),
    )
    row.settle_s = round(settle_s, 1)
    audit: Audit = await audit_event(endpoints.database_url, endpoints.redis_url, event_id)
    row.audit = audit.as_dict()


def fresh_servers(run_dir: Path) -> None:
    """Delete the data of the scenario's previous servers (unless one still runs): each run
    starts from an empty database and Redis, whatever earlier runs or migrations left."""
    from stack.servers.base import ServerRecord

    for kind in ("redis", "postgres", "kafka"):
        server_dir = run_dir / kind
        record = ServerRecord.read(server_dir)
        if record is not None and record.is_running_ours():
            continue  # a crashed run's server: the stack adopts it
        shutil.rmtree(server_dir, ignore_errors=True)


def run_scenario(name: str, config: ChaosConfig) -> Row:
    """One scenario on a stack of its own, start to stop; never raises (errors go in the row)."""
    fault = SCENARIOS[name]
    row = Row(scenario=name, fault=fault.describe(), users=config.users, seats=config.seats)
    started = time.monotonic()
    run_dir = config.run_root / name
    run_dir.mkdir(parents=True, exist_ok=True)
    fresh_servers(run_dir)
    say(name, f"starting its stack in {run_dir}")
    stack = None
    with open(run_dir / "console.log", "w") as console:
        try:
            stack = build_stack(run_dir, chaos_env(config, name), console)
            stack.start()
            say(name, "stack up")
            asyncio.run(_drive(stack, row, fault, config))
        except Exception as error:
            row.error = f"{type(error).__name__}: {error}"[:500]
            (run_dir / "error.txt").write_text(traceback.format_exc())
            say(name, f"ERROR {row.error}")
        finally:
            if stack is not None:
                say(name, "stopping the stack")
                stack.stop()
                row.stop_s, row.sigterm_ignored, row.stop_problem = stop_figures(stack)
    row.violations = violations(row)
    row.wall_s = round(time.monotonic() - started, 1)
    verdict = "ok" if not row.violations else "VIOLATIONS: " + "; ".join(row.violations)
    say(name, f"done in {row.wall_s} s: {verdict}")
    return row


# --- the report ------------------------------------------------------------------------------

COLUMNS = (
    ("scenario", 22),
    ("fault@s", 7),
    ("conf", 5),
    ("res-fail", 8),
    ("res-5xx", 7),
    ("oversell", 8),
    ("cap", 4),
    ("drift", 5),
    ("money", 5),
    ("pending", 7),
    ("lost", 4),
    ("overdue", 7),
    ("ready-s", 7),
    ("sigkill", 7),
    ("settle-s", 8),
    ("verdict", 7),
)


def _cells(row: Row) -> list[str]:
    a, d = row.audit, row.drop

    def fig(value: Any) -> str:
        return "-" if value is None else str(value)

    sigkill = "?" if row.stop_problem else str(len(row.sigterm_ignored))
    return [
        row.scenario,
        fig(row.fault_at_s),
        fig(d.get("confirmed")),
        fig(d.get("reserve_failed")),
        fig(d.get("reserve_retried_errors")),
        fig(a.get("oversell")),
        fig(a.get("capacity_breaks")),
        fig(a.get("drift")),
        fig(a.get("money_violations")),
        fig(a.get("pending")),
        fig(a.get("paid_holds_lost")),
        fig(a.get("overdue_reserved")),
        fig(row.ready_s),
        sigkill,
        fig(row.settle_s),
        "ok" if not row.violations else "FAIL",
    ]


def table(rows: list[Row]) -> str:
    head = " ".join(f"{name:<{width}}" for name, width in COLUMNS)
    lines = [head, "-" * len(head)]
    for row in rows:
        cells = _cells(row)
        lines.append(" ".join(f"{cell:<{w}}" for cell, (_, w) in zip(cells, COLUMNS, strict=True)))
    for row in rows:
        for violation in row.violations:
            lines.append(f"  {row.scenario}: {violation}")
        for problem in row.audit.get("problems", [])[:8]:
            lines.append(f"    {row.scenario}: {problem}")
    return "\n".join(lines)


@click.command()
@click.option(
    "--scenarios",
    default="all",
    show_default=True,
    help="comma-separated subset of: " + ", ".join(SCENARIOS),
)
@click.option("--users", type=int, default=ChaosConfig.users, show_default=True)
@click.option("--seats", type=int, default=ChaosConfig.seats, show_default=True)
@click.option(
    "--duration", type=float, default=ChaosConfig.duration_s, show_default=True,
    help="seconds over which the buyers arrive (the fault hits at 40 %)",
)  # fmt: skip
@click.option(
    "--out", type=click.Path(dir_okay=False), default=str(RESULTS / "chaos.json"),
    show_default=True,
)  # fmt: skip
@click.option(
    "--run-root", type=click.Path(file_okay=False), default=str(ChaosConfig.run_root),
    show_default=True, help="each scenario's stack runs in <run-root>/<scenario>",
)  # fmt: skip
@click.option(
    "--settle", "settle_s", type=float, default=0.0,
    help="bound of the settlement wait in seconds (default 2 x SAGA_TIMEOUT_S + 20 = 36)",
)  # fmt: skip
def main(
    scenarios: str,
    users: int,
    seats: int,
    duration: float,
    out: str,
    run_root: str,
    settle_s: float,
) -> None:
    """One small drop per scenario with one fault mid-drop; exit 1 on any violation."""
    names = list(SCENARIOS) if scenarios == "all" else [s.strip() for s in scenarios.split(",")]
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown:
        raise click.BadParameter(f"unknown: {', '.join(unknown)}", param_hint="--scenarios")
    config = ChaosConfig(
        users=users, seats=seats, duration_s=duration, run_root=Path(run_root), settle_s=settle_s
    )
    started = time.monotonic()
    rows = []
    for index, name in enumerate(names, 1):
        print(
            f"== scenario {index}/{len(names)}: {name} ({SCENARIOS[name].describe()})", flush=True
        )
        rows.append(run_scenario(name, config))
    report = table(rows)
    print("\n" + report, flush=True)
    failed = [row.scenario for row in rows if row.violations]
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(
        json.dumps(
            {
                "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "config": {
                    "users": users,
                    "seats": seats,
                    "duration_s": duration,
                    "settle_bound_s": config.settle_bound_s,
                },
                "wall_s": round(time.monotonic() - started, 1),
                "ok": not failed,
                "rows": [row.as_dict() for row in rows],
            },
            indent=2,
            default=str,
        )
    )
    print(f"\nwritten: {out}; {len(rows) - len(failed)}/{len(rows)} scenarios ok", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
