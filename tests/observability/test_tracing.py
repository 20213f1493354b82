"""Issue 6 acceptance (tracing): one trace id from the gateway's request span, through the booking
service's span and the outbox row, across Kafka (the relay's publish span) into a consumer's span.
Gateway and booking service are the real apps served by uvicorn on loopback in this process (so
the in-memory exporter sees every span); Redis, PostgreSQL and the broker are the real servers."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from booking.app import create_app as create_booking_app
from booking.db import create_pool, migrate
from booking.kafka import create_consumer
from booking.messaging import TOPIC_BOOKINGS
from booking.settings import Settings
from booking.store.users import insert_user
from common import tracing
from common.logs import JsonFormatter
from common.tokens import TokenKeys, issue_access_token
from gateway.app import create_app as create_gateway_app
from gateway.settings import GatewaySettings
from stack.infra import Endpoints
from stack.probes import ensure_database, with_database
from tests.serving import uvicorn_serving
from workers.outbox_relay import OutboxRelay
from workers.settings import WorkerSettings

TRACE_DATABASE = "booking_rush_trace"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.configure_tracing("test", {}, exporter=exporter)
    try:
        yield exporter
    finally:
        tracing.shutdown_tracing()


@pytest.fixture(scope="module")
async def trace_db(infra: Endpoints) -> AsyncIterator[Any]:
    """A database of its own: no other test's outbox relay publishes this test's rows."""
    url = with_database(infra.database_url, TRACE_DATABASE)
    await asyncio.to_thread(ensure_database, url)  # it runs its own event loop
    await migrate(url)
    pool = await create_pool(url, min_size=1, max_size=4)
    try:
        yield pool, url
    finally:
        await pool.close()


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    options: dict[str, Any] = {
        "lifespan": "on",
        "log_config": None,
        "access_log": False,
        "ws": "none",
    }
    async with uvicorn_serving(app, **options) as port:
        yield f"http://127.0.0.1:{port}"


def _server_span(spans: list[ReadableSpan], service: str, route: str) -> ReadableSpan:
    found = [
        s
        for s in spans
        if s.kind == SpanKind.SERVER
        and s.attributes is not None
        and s.attributes.get("booking_rush.service") == service
        and s.attributes.get("http.route") == route
    ]
    assert len(found) == 1, [(s.name, s.attributes) for s in spans]
    return found[0]


async def _consume_one(bootstrap: str, topic: str, key: str, group: str) -> Any:
    consumer = create_consumer(bootstrap, topic, group_id=group, session_timeout_ms=6000)
    await consumer.start()
    try:
        async with asyncio.timeout(30):
            while True:
                for messages in (await consumer.getmany(timeout_ms=500)).values():
                    for message in messages:
                        if message.key == key.encode():
                            return message
    finally:
        await consumer.stop()


async def test_one_trace_from_gateway_to_a_kafka_consumer(
    spans: InMemorySpanExporter,
    service_env: dict[str, str],
    trace_db: tuple[Any, str],
    kafka_bootstrap: str,
    unique: str,
) -> None:
    pool, database_url = trace_db
    env = {
        **service_env,
        "DATABASE_URL": database_url,
        "RATE_LIMIT_PER_IP": "1000",
        "RATE_LIMIT_PER_USER": "1000",
    }
    keys = TokenKeys.from_env(env, need_signing=True)

    async def user(role: str) -> tuple[str, dict[str, str]]:
        row = await insert_user(
            pool, email=f"{uuid.uuid4().hex[:12]}@trace.local", name="T", role=role,
            password_hash="not-a-real-hash",
        )  # fmt: skip
        assert row is not None
        token = issue_access_token(
            keys, user_id=row.user_id, role=role, ttl_s=900, now=datetime.now(UTC)
        )
        return row.user_id, {"Authorization": f"Bearer {token}"}

    _, organizer = await user("organizer")
    _, buyer = await user("customer")
    async with (
        serving(create_booking_app(Settings.from_env(env))) as booking_url,
        serving(
            create_gateway_app(GatewaySettings.from_env({**env, "BOOKING_URL": booking_url}))
        ) as gateway_url,
        httpx.AsyncClient(base_url=gateway_url + "/api/v1", timeout=20) as client,
    ):
        created = await client.post(
            "/events",
            headers=organizer,
            json={
                "name": f"trace-{unique}",
                "venue": "Loopback",
                "starts_at": "2031-01-01T20:00:00Z",
                "sale_starts_at": "2021-01-01T10:00:00Z",
                "max_per_user": 2,
                "currency": "EUR",
                "zones": [{"name": "Floor", "capacity": 5, "price_minor": 1000}],
            },
        )
        assert created.status_code == 201, created.text
        event = created.json()
        published = await client.post(f"/events/{event['event_id']}/publish", headers=organizer)
        assert published.status_code == 200, published.text
        reserved = await client.post(
            "/bookings/reserve",
            headers={**buyer, "Idempotency-Key": unique},
            json={"event_id": event["event_id"], "zone_id": event["zones"][0]["zone_id"],
                  "quantity": 1},
        )  # fmt: skip
        assert reserved.status_code == 201, reserved.text
        booking_id = reserved.json()["booking_id"]
        spans.clear()
        cancelled = await client.post(f"/bookings/{booking_id}/cancel", headers=buyer)
        assert cancelled.status_code == 200, cancelled.text

    gateway_span = _server_span(
        list(spans.get_finished_spans()), "gateway", "/api/v1/bookings/{id}/cancel"
    )
    booking_span = _server_span(
        list(spans.get_finished_spans()), "booking", "/bookings/{booking_id}/cancel"
    )
    trace_id = gateway_span.context.trace_id
    assert booking_span.context.trace_id == trace_id
    assert booking_span.parent is not None
    assert booking_span.parent.span_id == gateway_span.context.span_id

    # The outbox row written by the cancel carries the booking span's context ...
    headers = await pool.fetchval(
        "SELECT headers FROM outbox WHERE topic = $1 AND key = $2", TOPIC_BOOKINGS, booking_id
    )
    assert headers["traceparent"].split("-")[1] == format(trace_id, "032x")

    # ... the relay publishes it under a PRODUCER span of the same trace ...
    relay = OutboxRelay.provisioned(
        WorkerSettings(database_url=database_url, kafka_bootstrap=kafka_bootstrap)
    )
    await relay.start()
    try:
        assert await relay.tick() >= 1
    finally:
        await relay.stop()
    message = await _consume_one(kafka_bootstrap, TOPIC_BOOKINGS, booking_id, f"trace-{unique}")
    assert orjson.loads(message.value)["type"] == "booking.cancelled"
    producer = [s for s in spans.get_finished_spans() if s.kind == SpanKind.PRODUCER
                and s.context.trace_id == trace_id]  # fmt: skip
    assert len(producer) == 1
    assert producer[0].parent is not None
    assert producer[0].parent.span_id == booking_span.context.span_id

    # ... and a consumer continues it from the Kafka headers; its log lines carry the trace id.
    with tracing.consumer_span(f"{TOPIC_BOOKINGS} process", message.headers) as consumer:
        line = JsonFormatter("test").format(
            logging.LogRecord("worker", logging.INFO, __file__, 1, "handled", None, None)
        )
    assert consumer.get_span_context().trace_id == trace_id
    assert orjson.loads(line)["trace_id"] == format(trace_id, "032x")
    finished = [s for s in spans.get_finished_spans() if s.kind == SpanKind.CONSUMER]
    assert len(finished) == 1 and finished[0].parent is not None
    assert finished[0].parent.span_id == producer[0].context.span_id


def test_tracing_off_costs_nothing_and_passes_headers_through() -> None:
    tracing.shutdown_tracing()
    assert not tracing.enabled()
    with tracing.consumer_span(
        "t", [("traceparent", b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01")]
    ) as span:
        assert not span.get_span_context().is_valid
    assert tracing.current_headers() == {}
    client_headers = [("traceparent", "00-abc-def-01")]
    assert tracing.replace_trace_headers(client_headers) is client_headers
    with tracing.producer_span("topic", {"traceparent": "00-abc-def-01"}) as carried:
        assert carried == {"traceparent": "00-abc-def-01"}


async def test_spans_go_out_over_otlp_http_when_an_endpoint_is_set() -> None:
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http.trace_exporter")
    received: list[tuple[str, bytes]] = []

    async def collector(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        received.append((scope["path"], body))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async with serving(collector) as url:
        provider = tracing.configure_tracing("otlp-test", {"OTEL_EXPORTER_OTLP_ENDPOINT": url})
        assert provider is not None and tracing.enabled()
        with tracing.start_span("exported"):
            pass
        await asyncio.to_thread(tracing.shutdown_tracing)  # flushes the batch, blocking
    assert [path for path, _ in received] == ["/v1/traces"]
    assert b"exported" in received[0][1] and b"otlp-test" in received[0][1]


def test_no_endpoint_means_no_tracing() -> None:
    assert tracing.configure_tracing("x", {}) is None
    assert tracing.configure_tracing("x", {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:4318",
                                            "OTEL_SDK_DISABLED": "true"}) is None  # fmt: skip
    assert not tracing.enabled()
