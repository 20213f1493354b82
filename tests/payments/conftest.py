"""Saga tests: the booking app in-process plus the saga workers (outbox relay, orchestrator,
step) running as background tasks against the real servers, each test on its own topics and
consumer groups."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest

from booking.app import create_app
from booking.payments.providers import PaymentConfig
from booking.payments.providers.base import signature_header
from booking.payments.providers.mock import SIGNATURE_HEADER, mock_event, provider_ref_of
from booking.payments.saga import SagaTopics
from booking.settings import Settings
from common.tokens import issue_access_token
from tests.polling import wait_for as wait_for  # re-exported for the tests here
from workers.outbox_relay import OutboxRelay
from workers.saga_orchestrator import SagaOrchestrator
from workers.saga_step import SagaStep
from workers.settings import WorkerSettings

SAGA_HOLD_TTL_S = 2
SAGA_TIMEOUT_S = 2.0


@pytest.fixture(scope="session")
def saga_settings(service_env: dict[str, str]) -> Settings:
    # The mock never reaches an in-process app: tests deliver the webhooks themselves.
    # No extra hold time while paying: these tests let paid-for holds lapse on purpose (the
    # grace itself is tested on its own, by setting it on the rig's Payments).
    settings = Settings.from_env(
        {**service_env, "HOLD_TTL_S": str(SAGA_HOLD_TTL_S), "PAYMENT_HOLD_GRACE_S": "0"}
    )
    return replace(
        settings, payments=replace(settings.payments, webhook_url="http://127.0.0.1:9/none")
    )


@dataclass
class SagaRig:
    client: httpx.AsyncClient
    app: Any
    pool: Any
    topics: SagaTopics
    worker_settings: WorkerSettings
    settings: Settings
    unique: str

    def headers(self, user_id: str, role: str = "customer") -> dict[str, str]:
        token = issue_access_token(
            self.settings.token_keys, user_id=user_id, role=role, ttl_s=600, now=datetime.now(UTC)
        )
        return {"Authorization": f"Bearer {token}"}

    async def user(self, role: str = "customer") -> tuple[str, dict[str, str]]:
        from booking.store.users import insert_user

        user = await insert_user(
            self.pool,
            email=f"{uuid.uuid4().hex[:10]}@example.com",
            name="Buyer",
            role=role,
            password_hash="not-a-real-hash",
        )
        assert user is not None
        return user.user_id, self.headers(user.user_id, role)

    async def event(self, *, capacity: int = 4, price_minor: int = 2500) -> dict[str, Any]:
        _, organizer = await self.user("organizer")
        created = await self.client.post(
            "/api/v1/events",
            headers=organizer,
            json={
                "name": "Saga night",
                "venue": "Loopback",
                "starts_at": "2031-01-01T20:00:00Z",
                "sale_starts_at": "2021-01-01T10:00:00Z",
                "max_per_user": 4,
                "currency": "EUR",
                "zones": [{"name": "Floor", "capacity": capacity, "price_minor": price_minor}],
            },
        )
        assert created.status_code == 201, created.text
        event_id = created.json()["event_id"]
        published = await self.client.post(f"/api/v1/events/{event_id}/publish", headers=organizer)
        assert published.status_code == 200, published.text
        return published.json()

    async def reserve(
        self, headers: dict[str, str], event: dict[str, Any], quantity: int = 1
    ) -> dict[str, Any]:
        answer = await self.client.post(
            "/api/v1/bookings/reserve",
            headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
            json={
                "event_id": event["event_id"],
                "zone_id": event["zones"][0]["zone_id"],
                "quantity": quantity,
            },
        )
        assert answer.status_code == 201, answer.text
        return answer.json()

    async def pay(
        self, headers: dict[str, str], booking_id: str, outcome: str = "no_answer"
    ) -> httpx.Response:
        return await self.client.post(
            "/api/v1/payments",
            headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
            json={"booking_id": booking_id, "test_outcome": outcome},
        )

    async def signed_webhook(
        self, payment_id: str, outcome: str = "succeed", **differing: Any
    ) -> tuple[bytes, str]:
        """The mock's signed event for the payment, as the mock would send it (its PaymentIntent,
        amount and currency) but for what `differing` says (amount_minor, currency,
        provider_ref)."""
        row = await self.pool.fetchrow(
            "SELECT amount_minor, currency FROM payments WHERE payment_id = $1",
            uuid.UUID(payment_id),
        )
        charge = {
            "provider_ref": provider_ref_of(payment_id),
            "amount_minor": row["amount_minor"],
            "currency": row["currency"],
            **differing,
        }
        body = mock_event(outcome, payment_id, now_s=time.time(), **charge)
        secret = self.settings.payments.webhook_secret
        return body, signature_header(secret, body, int(time.time()))

    async def deliver(self, body: bytes, signature: str) -> httpx.Response:
        return await self.client.post(
            "/api/v1/payments/webhook",
            content=body,
            headers={SIGNATURE_HEADER: signature, "Content-Type": "application/json"},
        )

    async def booking_status(self, booking_id: str) -> str:
        return str(
            await self.pool.fetchval(
                "SELECT status FROM bookings WHERE booking_id = $1", uuid.UUID(booking_id)
            )
        )

    async def payment_status(self, payment_id: str) -> str:
        return str(
            await self.pool.fetchval(
                "SELECT status FROM payments WHERE payment_id = $1", uuid.UUID(payment_id)
            )
        )

    async def saga_state(self, saga_id: str) -> str | None:
        value = await self.pool.fetchval(
            "SELECT state FROM sagas WHERE saga_id = $1", uuid.UUID(saga_id)
        )
        return None if value is None else str(value)

    async def outbox_types(self, topic: str, key: str) -> list[str]:
        rows = await self.pool.fetch(
            "SELECT payload FROM outbox WHERE topic = $1 AND key = $2 ORDER BY id", topic, key
        )
        return [row["payload"]["type"] for row in rows]


async def _run(worker: Any, stopping: asyncio.Event) -> None:
    await worker.start()
    try:
        while not stopping.is_set():
            if await worker.tick() == 0:
                await asyncio.sleep(0.01)
    finally:
        await worker.stop()


@contextlib.asynccontextmanager
async def running(*workers: Any) -> AsyncIterator[None]:
    """Runs the workers as background tasks for the duration of the block."""
    stopping = asyncio.Event()
    tasks = [asyncio.create_task(_run(worker, stopping)) for worker in workers]
    try:
        yield
    finally:
        stopping.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result


@pytest.fixture
async def rig(
    saga_settings: Settings, clean_db: Any, unique: str, infra: Any
) -> AsyncIterator[SagaRig]:
    app = create_app(saga_settings)
    topics = SagaTopics.with_suffix(unique)
    worker_settings = WorkerSettings(
        redis_url=infra.redis_url,
        database_url=infra.database_url,
        kafka_bootstrap=infra.kafka_bootstrap,
        kafka_session_timeout_ms=1000,
        saga_timeout_s=SAGA_TIMEOUT_S,
        interval_s=0.2,
        payments=PaymentConfig(webhook_url="http://127.0.0.1:9/none"),
        ticket_secret=saga_settings.ticket_secret,
    )
    async with app.router.lifespan_context(app):
        app.state.services.payments.topics = topics
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://booking") as client:
            yield SagaRig(
                client=client,
                app=app,
                pool=clean_db,
                topics=topics,
                worker_settings=worker_settings,
                settings=saga_settings,
                unique=unique,
            )


@pytest.fixture
def saga_workers(rig: SagaRig) -> Callable[[], Any]:
    """`async with saga_workers():` runs relay, orchestrator and step on the test's topics."""

    def start() -> Any:
        options = {"topics": rig.topics, "poll_timeout_ms": 100}
        return running(
            OutboxRelay.provisioned(rig.worker_settings),
            SagaOrchestrator.provisioned(
                rig.worker_settings, group_id=f"orch-{rig.unique}", **options
            ),
            SagaStep.provisioned(rig.worker_settings, group_id=f"step-{rig.unique}", **options),
        )

    return start


def envelope_bytes(type_: str, data: dict[str, Any]) -> bytes:
    return orjson.dumps(
        {
            "id": str(uuid.uuid4()),
            "type": type_,
            "occurred_at": datetime.now(UTC).isoformat(),
            "key": "k",
            "data": data,
        }
    )
