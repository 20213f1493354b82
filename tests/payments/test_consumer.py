"""Consumer discipline on the real broker: retry with backoff for retriable errors, dead letters
(with the reason) for the rest and for malformed messages, and the consumer keeps going."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaConsumer
from prometheus_client import REGISTRY

from booking.errors import ServiceUnavailableError
from booking.kafka import create_producer
from booking.messaging import Envelope
from booking.store.messages import claim_message
from tests.payments.conftest import SagaRig, envelope_bytes, running, wait_for
from workers.consumer import ConsumerWorker, MalformedMessageError
from workers.resources import open_pool


class Recorder(ConsumerWorker):
    name = "test-recorder"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[str] = []
        self.flaky_failures = 2

    async def handle(self, envelope: Envelope) -> None:
        if envelope.type == "poison":
            raise MalformedMessageError("cannot handle poison")
        if envelope.type == "flaky" and self.flaky_failures:
            self.flaky_failures -= 1
            raise ServiceUnavailableError("not yet")
        async with self.pool.acquire() as conn, conn.transaction():
            if await claim_message(conn, self.name, envelope.id):
                self.seen.append(envelope.type)


def _dlq_count(topic: str) -> float:
    return REGISTRY.get_sample_value("booking_rush_kafka_dlq_messages_total", {"topic": topic}) or 0


async def test_poison_goes_to_the_dlq_retriable_is_retried_duplicates_change_nothing(
    rig: SagaRig,
) -> None:
    topic = f"test.consumer.{rig.unique}"
    async with open_pool(rig.worker_settings, max_size=4) as pool:
        worker = Recorder(
            rig.worker_settings,
            pool,
            topics=[topic],
            group_id=f"rec-{rig.unique}",
            poll_timeout_ms=100,
            backoff_s=0.01,
        )
        duplicate = envelope_bytes("ok", {})
        messages = [
            b"\x00not json at all",
            envelope_bytes("poison", {}),
            envelope_bytes("flaky", {}),
            duplicate,
            duplicate,
            envelope_bytes("last", {}),
        ]
        producer = create_producer(rig.worker_settings.kafka_bootstrap, idempotence=False)
        async with running(worker):
            await producer.start()
            try:
                for value in messages:
                    await producer.send_and_wait(topic, value=value, key=b"same-key")
            finally:
                await producer.stop()
            await wait_for(lambda: _saw_last(worker))
    assert worker.seen == ["flaky", "ok", "last"]
    assert _dlq_count(topic) == 2

    dead = AIOKafkaConsumer(
        f"{topic}.dlq",
        bootstrap_servers=rig.worker_settings.kafka_bootstrap,
        group_id=f"dlq-{rig.unique}",
        auto_offset_reset="earliest",
        session_timeout_ms=1000,
        heartbeat_interval_ms=300,
    )
    await dead.start()
    letters: list[Any] = []
    try:
        async with asyncio.timeout(15):
            while len(letters) < 2:
                for batch in (await dead.getmany(timeout_ms=200)).values():
                    letters.extend(batch)
    finally:
        await dead.stop()
    reasons = [dict(letter.headers)["dlq-reason"].decode() for letter in letters]
    assert reasons[0].startswith("malformed: not JSON")
    assert "cannot handle poison" in reasons[1]
    assert letters[0].value == messages[0]


async def _saw_last(worker: Recorder) -> bool:
    return "last" in worker.seen
