"""The buyers of a chaos drop (`loadtests/chaos.py`): a lean asyncio client against the gateway,
retrying like a real client, one journey per buyer."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from loadtests.chaos_scenarios import (
    API,
    BUSINESS_409,
    JOURNEY_LIMIT_S,
    RETRY_STATUSES,
    ChaosConfig,
)


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
