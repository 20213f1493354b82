"""A ticket drop: buyers rush one event (queue on), wait for their pass on the SSE stream,
reserve, pay through the mock provider and wait for CONFIRMED; some abandon on the way.

    locust -f loadtests/locustfile.py --headless -u 500 -r 100 --run-time 3m \
        --csv loadtests/results/drop --html loadtests/results/drop.html

Each simulated user is one buyer doing one journey, then it stops; the run ends when every buyer
has finished (or at --run-time). Then the invariants are checked (loadtests/drop_checks.py, with
the money audit of loadtests/audit.py read from PostgreSQL) and a broken one makes the process
exit 1. Setup (users in PostgreSQL, tokens minted from the
stack's JWT secret, the event through the API) runs in `loadtests.drop_setup` unless DROP_PLAN
names a plan already written. Environment: GATEWAY_URL, DATABASE_URL, JWT_SECRET (see
loadtests/target.py), DROP_SEATS (100), DROP_PLAN, DROP_SUMMARY, DROP_MAX_WAIT_S (90),
DROP_SETTLE_S (60), and the abandon shares DROP_LEAVE_SHARE (0.05), DROP_LAPSE_SHARE (0.10),
DROP_DECLINE_SHARE (0.05).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import gevent
from locust import HttpUser, constant, events, task
from locust.env import Environment
from locust.exception import StopUser
from locust.runners import MasterRunner, WorkerRunner

from loadtests.drop_checks import Ledger, check_drop, money_audit

log = logging.getLogger(__name__)
RESULTS = Path(os.environ.get("DROP_RESULTS_DIR") or Path(__file__).resolve().parent / "results")
FINAL_BOOKING = {"CONFIRMED", "CANCELLED", "EXPIRED", "REFUNDED"}
MAX_429_RETRIES = 10

ledger = Ledger()
plan: dict[str, Any] = {}
_next_buyer = itertools.count()
_checked = False


def _share(name: str, default: float) -> float:
    return float(os.environ.get(name) or default)


def _stamp() -> str:
    return time.strftime("%Y%m%dT%H%M%S")


@events.init.add_listener
def load_plan(environment: Environment, **_: Any) -> None:
    """Read DROP_PLAN, or run the setup for --users buyers and DROP_SEATS seats."""
    if isinstance(environment.runner, WorkerRunner | MasterRunner):
        raise SystemExit("the drop runs in one locust process (no --master/--worker)")
    path = os.environ.get("DROP_PLAN")
    if not path:
        users = int(getattr(environment.parsed_options, "num_users", None) or 100)
        seats = int(os.environ.get("DROP_SEATS") or 100)
        path = str(RESULTS / f"drop-plan-{_stamp()}.json")
        command = [sys.executable, "-m", "loadtests.drop_setup"]
        command += ["--users", str(users), "--seats", str(seats), "--out", path]
        subprocess.run(command, check=True, timeout=300)
    plan.update(json.loads(Path(path).read_text()))
    environment.host = environment.host or plan["gateway_url"]


@events.test_start.add_listener
def watch_buyers(environment: Environment, **_: Any) -> None:
    """Stop the run as soon as every buyer finished its journey."""
    options = environment.parsed_options
    wanted = min(len(plan["buyers"]), int(getattr(options, "num_users", 0) or 0))

    def watch() -> None:
        while ledger.finished < wanted:
            gevent.sleep(0.5)
        assert environment.runner is not None
        environment.runner.quit()

    gevent.spawn(watch)


@events.test_stop.add_listener
def check_invariants(environment: Environment, **_: Any) -> None:
    global _checked
    if _checked or not plan:
        return
    _checked = True
    api = plan["gateway_url"].rstrip("/") + "/api/v1"
    settle_s = _share("DROP_SETTLE_S", 60)
    problems, facts = check_drop(
        api, plan["event"]["event_id"], plan["admin_token"], ledger, settle_s
    )
    money_problems, money, warning = money_audit(
        _database_url(), plan["event"]["event_id"], settle_s
    )
    problems += money_problems
    summary = {
        "finished_at": datetime.now().astimezone().isoformat(),
        "event_id": plan["event"]["event_id"],
        "buyers": ledger.finished,
        "outcomes": dict(ledger.outcomes),
        "bookings": dict(facts["bookings"]),
        "payments": dict(facts["payments"]),
        "tickets_confirmed": facts["tickets_confirmed"],
        "capacity": facts["stats"].get("capacity"),
        "sold": facts["stats"].get("sold"),
        "held": facts["stats"].get("held"),
        "available": facts["stats"].get("available"),
        "money_audit": {k: v for k, v in (money or {}).items() if k != "problems"} or None,
        "money_audit_warning": warning,
        "invariants_ok": not problems,
        "problems": problems,
    }
    out = Path(os.environ.get("DROP_SUMMARY") or RESULTS / f"drop-{_stamp()}-summary.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))
    lines = [f"drop summary ({out}):"]
    lines += [f"  {key:<18} {value}" for key, value in summary.items() if key != "problems"]
    lines += [f"  BROKEN: {problem}" for problem in problems] or ["  invariants: all hold"]
    if warning:
        lines.append(f"  WARNING: {warning}")
    print("\n".join(lines), flush=True)
    if problems:
        environment.process_exit_code = 1


def _database_url() -> str | None:
    """The stack's database, found the way `make run` found it (None: not found)."""
    if plan.get("database_url"):
        return str(plan["database_url"])
    from loadtests.target import find_database_url

    try:
        return find_database_url()
    except Exception as error:
        log.warning("no database for the money audit: %s", error)
        return None


def _sse(response: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event, data) pairs of a text/event-stream response; heartbeats skipped."""
    name, data = "message", list[str]()
    for raw in response.iter_lines(chunk_size=64, decode_unicode=True):
        line = raw.rstrip("\r") if raw is not None else ""
        if not line:
            if data:
                yield name, json.loads("\n".join(data))
            name, data = "message", list[str]()
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


class Buyer(HttpUser):
    """One buyer, one journey; the outcome it plays is drawn when it starts."""

    wait_time = constant(0)

    def on_start(self) -> None:
        index = next(_next_buyer)
        if index >= len(plan["buyers"]):
            raise StopUser()
        self.me = plan["buyers"][index]
        self.event = plan["event"]
        self.token = self.me["token"]
        draw = random.random()
        shares = [
            ("leave_queue", _share("DROP_LEAVE_SHARE", 0.05)),
            ("let_hold_lapse", _share("DROP_LAPSE_SHARE", 0.10)),
            ("decline", _share("DROP_DECLINE_SHARE", 0.05)),
        ]
        self.plays = "pay"
        for name, share in shares:
            if draw < share:
                self.plays = name
                break
            draw -= share

    def _call(self, method: str, path: str, name: str, ok: set[int], **kw: Any) -> Any:
        """One API call; 429 waits its Retry-After and retries; statuses in `ok` succeed."""
        headers = {"Authorization": f"Bearer {self.token}", **kw.pop("headers", {})}
        for _ in range(MAX_429_RETRIES):
            with self.client.request(
                method, f"/api/v1{path}", name=name, headers=headers, catch_response=True, **kw
            ) as answer:
                if answer.status_code == 429:
                    answer.success()
                    events.request.fire(
                        request_type="LIMIT", name=f"429 on {name}", response_time=0,
                        response_length=0, exception=None, context={},
                    )  # fmt: skip
                    wait = float(answer.headers.get("Retry-After") or 1)
                elif answer.status_code in ok:
                    answer.success()
                    return answer
                else:
                    answer.failure(f"{answer.status_code}: {answer.text[:200]}")
                    return answer
            gevent.sleep(wait)
        return answer

    def _done(self, outcome: str) -> None:
        ledger.finish(outcome)
        raise StopUser()

    def _custom(self, kind: str, name: str, seconds: float) -> None:
        events.request.fire(
            request_type=kind, name=name, response_time=max(0.0, seconds * 1000),
            response_length=0, exception=None, context={},
        )  # fmt: skip

    @task
    def journey(self) -> None:
        event_id = self.event["event_id"]
        if self.me["login"]:
            self._login()
        joined = self._call(
            "POST", "/queue/join", "/queue/join", {202}, json={"event_id": event_id}
        )
        if joined.status_code != 202:
            self._done("error_join")
        started = time.time()
        if self.plays == "leave_queue":
            gevent.sleep(random.uniform(0.2, 2.0))
            self._leave("left_queue")
        queue_pass = self._await_pass(event_id, started)
        booking = self._reserve(queue_pass)
        if self.plays == "let_hold_lapse":
            self._done("let_hold_lapse")
        self._pay(booking)

    def _login(self) -> None:
        body = {"email": self.me["email"], "password": plan["password"]}
        answer = self._call("POST", "/auth/login", "/auth/login", {200}, json=body)
        if answer.status_code != 200:
            self._done("error_login")
        self.token = answer.json()["access_token"]

    def _leave(self, outcome: str) -> None:
        path = f"/queue/position/{self.event['event_id']}"
        self._call("DELETE", path, "/queue/position/[event] (leave)", {204, 404})
        self._done(outcome)

    def _await_pass(self, event_id: str, joined_at: float) -> str:
        """The pass from the SSE stream (fires the queue-wait and pass-delay events)."""
        max_wait = _share("DROP_MAX_WAIT_S", 90)
        path = f"/queue/position/{event_id}/stream"
        stream = None
        try:
            with gevent.Timeout(max_wait):
                stream = self._call(
                    "GET", path, "/queue/position/[event]/stream", {200}, stream=True,
                    timeout=(10, 60),
                )  # fmt: skip
                if stream.status_code != 200:
                    self._done("error_stream")
                for name, data in _sse(stream):
                    if name == "pass":
                        return self._got_pass(data, joined_at)
                    if name == "sold_out":
                        self._done("sold_out_in_queue")
        except gevent.Timeout:
            self._leave("gave_up_waiting")
        finally:
            if stream is not None:
                stream.close()  # not `with`: re-entering locust's response context reports twice
        self._done("stream_ended_without_pass")
        raise AssertionError("unreachable")

    def _got_pass(self, data: dict[str, Any], joined_at: float) -> str:
        now = time.time()
        admitted = _epoch(data["pass_expires_at"]) - self.event["queue"]["pass_ttl_s"]
        self._custom("QUEUE", "join -> pass (queue wait)", now - joined_at)
        self._custom("QUEUE", "admitted -> pass received (delivery)", now - admitted)
        return str(data["queue_pass"])

    def _reserve_body(self, zone: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {"event_id": self.event["event_id"], "zone_id": zone["zone_id"]}
        count = random.randint(1, min(4, self.event["max_per_user"]))
        if zone.get("seats"):
            body["seats"] = random.sample(zone["seats"], min(count, len(zone["seats"])))
        else:
            body["quantity"] = count
        return body

    def _reserve(self, queue_pass: str) -> dict[str, Any]:
        zones = sorted(self.event["zones"], key=lambda _: random.random())
        attempts = [zones[0]] * 3 + zones[1:]  # seats taken: pick others with the same pass
        for zone in attempts:
            answer = self._call(
                "POST", "/bookings/reserve", "/bookings/reserve", {201, 409},
                json=self._reserve_body(zone),
                headers={"X-Queue-Pass": queue_pass, "Idempotency-Key": uuid.uuid4().hex},
            )  # fmt: skip
            if answer.status_code == 201:
                booking = dict(answer.json())
                ledger.booking(booking, self.token)
                return booking
            if answer.status_code != 409:
                self._leave(f"error_reserve_{answer.status_code}")
        self._leave("sold_out")  # frees the unused pass's slot for the next in line
        raise AssertionError("unreachable")

    def _pay(self, booking: dict[str, Any]) -> None:
        outcome = "decline" if self.plays == "decline" else "succeed"
        paid_at = time.time()
        answer = self._call(
            "POST", "/payments", "/payments", {201},
            json={"booking_id": booking["booking_id"], "test_outcome": outcome},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )  # fmt: skip
        if answer.status_code != 201:
            self._done(f"error_pay_{answer.status_code}")
        payment = dict(answer.json())
        ledger.payment(payment, self.token, outcome)
        if outcome == "decline":
            self._done("declined")
        deadline = paid_at + 60
        while time.time() < deadline:
            gevent.sleep(0.25)
            path = f"/bookings/{booking['booking_id']}"
            status = self._call("GET", path, "/bookings/[id]", {200}).json().get("status")
            if status == "CONFIRMED":
                self._custom("SAGA", "payment -> CONFIRMED", time.time() - paid_at)
                self._done("confirmed")
            if status in FINAL_BOOKING:
                self._done(f"paid_but_{status.lower()}")
        self._done("paid_not_confirmed_in_60s")
