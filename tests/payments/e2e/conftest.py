"""The real processes (`make run`'s stack: gateway, booking, every registered worker) on their own
database and Redis db, with short timeouts so the saga paths finish quickly."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from booking.payments.providers import derived_webhook_secret
from booking.payments.providers.base import signature_header
from booking.payments.providers.mock import SIGNATURE_HEADER, mock_event, provider_ref_of
from booking.payments.saga import SagaTopics
from tests.live import LiveStack, insert_user, live_stack_fixture

HOLD_TTL_S = 8
SAGA_TIMEOUT_S = 12  # longer than a hold: a late payment meets a lapsed hold, not a timeout
# Its own topics and consumer groups, even on a broker another stack uses at the same time.
TOPICS = SagaTopics.for_namespace(f"e2e{uuid.uuid4().hex[:8]}")
NAMESPACE = TOPICS.payments.rsplit(".", 1)[1]


saga_stack = live_stack_fixture(
    "saga_e2e",
    fixture="saga_stack",
    env={
        "HOLD_TTL_S": str(HOLD_TTL_S),
        "SAGA_TIMEOUT_S": str(SAGA_TIMEOUT_S),
        "PAYMENT_HOLD_GRACE_S": "0",  # a paid-for hold lapsing is one of the cases here
        "KAFKA_NAMESPACE": NAMESPACE,
    },
)


@pytest.fixture
async def gw(saga_stack: LiveStack) -> AsyncIterator[httpx.AsyncClient]:
    async with saga_stack.client() as client:
        yield client


@pytest.fixture
async def db(saga_stack: LiveStack) -> AsyncIterator[Any]:
    async with saga_stack.database() as pool:
        yield pool


class Buyers:
    def __init__(self, stack: LiveStack, gw: httpx.AsyncClient, db: Any) -> None:
        self.stack, self.gw, self.db = stack, gw, db

    async def user(self, role: str = "customer") -> dict[str, str]:
        return (await insert_user(self.db, self.stack, role))[1]

    async def event(self, *capacities: int) -> dict[str, Any]:
        organizer = await self.user("organizer")
        zones = [
            {"name": f"Zone {i}", "capacity": capacity, "price_minor": 1500 + i}
            for i, capacity in enumerate(capacities)
        ]
        created = await self.gw.post(
            "/events",
            headers=organizer,
            json={
                "name": f"saga-{uuid.uuid4().hex[:6]}",
                "venue": "Loopback",
                "starts_at": "2031-01-01T20:00:00Z",
                "sale_starts_at": "2021-01-01T10:00:00Z",
                "max_per_user": 4,
                "currency": "EUR",
                "zones": zones,
            },
        )
        assert created.status_code == 201, created.text
        published = await self.gw.post(
            f"/events/{created.json()['event_id']}/publish", headers=organizer
        )
        assert published.status_code == 200, published.text
        return published.json()

    async def reserve(
        self, headers: dict[str, str], event: dict[str, Any], zone: int = 0, quantity: int = 1
    ) -> httpx.Response:
        return await self.gw.post(
            "/bookings/reserve",
            headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
            json={
                "event_id": event["event_id"],
                "zone_id": event["zones"][zone]["zone_id"],
                "quantity": quantity,
            },
        )

    async def pay(self, headers: dict[str, str], booking_id: str, outcome: str) -> str:
        answer = await self.gw.post(
            "/payments",
            headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
            json={"booking_id": booking_id, "test_outcome": outcome},
        )
        assert answer.status_code == 201, answer.text
        return str(answer.json()["payment_id"])

    async def webhook(self, payment_id: str) -> tuple[bytes, dict[str, str]]:
        secret = derived_webhook_secret(self.stack.env["INTERNAL_SECRET"])
        row = await self.db.fetchrow(
            "SELECT amount_minor, currency FROM payments WHERE payment_id = $1",
            uuid.UUID(payment_id),
        )
        body = mock_event(
            "succeed",
            payment_id,
            provider_ref_of(payment_id),
            amount_minor=row["amount_minor"],
            currency=row["currency"],
            now_s=time.time(),
        )
        signature = signature_header(secret, body, int(time.time()))
        return body, {SIGNATURE_HEADER: signature, "Content-Type": "application/json"}

    async def booking(self, headers: dict[str, str], booking_id: str) -> dict[str, Any]:
        answer = await self.gw.get(f"/bookings/{booking_id}", headers=headers)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    async def payment(self, headers: dict[str, str], payment_id: str) -> dict[str, Any]:
        answer = await self.gw.get(f"/payments/{payment_id}", headers=headers)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    async def available(self, event: dict[str, Any], zone: int = 0) -> int:
        answer = await self.gw.get(f"/events/{event['event_id']}/availability")
        return int(answer.json()["zones"][zone]["available"])

    async def outbox_count(self, topic: str, key: str, type_: str) -> int:
        return int(
            await self.db.fetchval(
                "SELECT count(*) FROM outbox WHERE topic = $1 AND key = $2 "
                "AND payload->>'type' = $3",
                topic,
                key,
                type_,
            )
        )


@pytest.fixture
def buyers(saga_stack: LiveStack, gw: httpx.AsyncClient, db: Any) -> Buyers:
    return Buyers(saga_stack, gw, db)
