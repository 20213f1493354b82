"""outbox-relay: publishes outbox rows to Kafka, then marks them published.

At-least-once: a crash after the send and before the mark publishes a row again, which the
consumers' processed-message table absorbs. One relay at a time holds the advisory lock, so
messages of one key leave in the order they were written; extra copies stand by.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer
from prometheus_client import Counter, Gauge

from booking.db import create_pool
from booking.kafka import create_producer
from common.tracing import producer_span
from workers.settings import WorkerSettings

log = logging.getLogger(__name__)

_RELAY_LOCK = 724_113_902

PUBLISHED = Counter(
    "booking_rush_outbox_published_total", "Outbox messages published to Kafka", ["topic"]
)
BACKLOG = Gauge("booking_rush_outbox_backlog", "Outbox messages not yet published")


class OutboxRelay:
    name = "outbox-relay"
    # An idle tick waits for the outbox trigger's NOTIFY (or interval_s), so no sleep after it.
    idle_interval_s = 0.0

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self.pool: asyncpg.Pool | None = None
        self.producer: AIOKafkaProducer | None = None
        self._listener: asyncpg.Connection | None = None
        self._wake = asyncio.Event()
        self._idle = False

    async def start(self) -> None:
        self.pool = await create_pool(self.settings.database_url, min_size=1, max_size=2)
        self.producer = create_producer(
            self.settings.kafka_bootstrap, idempotence=self.settings.kafka_idempotence
        )
        await self.producer.start()
        self._listener = await asyncpg.connect(self.settings.database_url)
        await self._listener.add_listener("outbox", self._on_notify)

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def stop(self) -> None:
        if self._listener is not None:
            await self._listener.close()
        if self.producer is not None:
            await self.producer.stop()
        if self.pool is not None:
            await self.pool.close()

    async def tick(self) -> int:
        if self._idle:
            try:
                await asyncio.wait_for(self._wake.wait(), self.settings.interval_s)
            except TimeoutError:
                pass
        self._wake.clear()
        handled = await self._relay_batch()
        self._idle = handled == 0
        return handled

    async def _relay_batch(self) -> int:
        assert self.pool is not None and self.producer is not None
        async with self.pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _RELAY_LOCK):
                return 0
            rows = await conn.fetch(
                """SELECT id, topic, key, payload, headers FROM outbox
                   WHERE published_at IS NULL ORDER BY id LIMIT $1""",
                self.settings.batch_size,
            )
            if rows:
                await self._publish(rows)
                await conn.execute(
                    "UPDATE outbox SET published_at = $2 WHERE id = ANY($1::bigint[])",
                    [row["id"] for row in rows],
                    datetime.now(UTC),
                )
            BACKLOG.set(
                await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            )
        return len(rows)

    async def _publish(self, rows: list[asyncpg.Record]) -> None:
        assert self.producer is not None
        pending = []
        for row in rows:
            stored = {k: str(v) for k, v in (row["headers"] or {}).items()}
            # Tracing on: a PRODUCER span continues the trace of the transaction that wrote the
            # row, and the message carries that span's context. Off: headers go out as stored.
            with producer_span(row["topic"], stored) as carried:
                headers = [(k, v.encode()) for k, v in carried.items()]
                pending.append(
                    await self.producer.send(
                        row["topic"],
                        value=orjson.dumps(row["payload"]),
                        key=row["key"].encode(),
                        headers=headers or None,
                    )
                )
        await asyncio.gather(*pending)
        for row in rows:
            PUBLISHED.labels(row["topic"]).inc()
