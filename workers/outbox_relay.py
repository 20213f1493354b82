"""outbox-relay: publishes outbox rows to Kafka, then marks them published.

At-least-once: a crash after the send and before the mark publishes a row again, which the
consumers' processed-message table absorbs. Rows are marked only after every send of the batch
was acknowledged (in the transaction that read them), so a failed or timed-out publish leaves the
whole batch unpublished. A Kafka failure rebuilds the producer in place (and creates the batch's
topics again: a broker that restarted empty has none); publishes that keep failing after that
end the process (exit code 4) so a fresh one takes over. One relay at a time holds the advisory
lock, so messages of one key leave in the order they were written; extra copies stand by.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, KafkaTimeoutError
from prometheus_client import Counter, Gauge

from booking.kafka import create_producer
from booking.store import (
    lock_outbox_relay,
    mark_published,
    outbox_backlog,
    unpublished_messages,
)
from common.tracing import producer_span
from workers.kafka_clients import KAFKA_REBUILDS, close_quietly, ensure_topics
from workers.resources import Provisioned, open_pool
from workers.runtime import WorkerUnhealthyError
from workers.settings import WorkerSettings

log = logging.getLogger(__name__)

_RELAY_LOCK = 724_113_902
PUBLISH_FAILURES_BEFORE_EXIT = 3
POOL_CLOSE_S = 2.0  # then the pool is terminated

PUBLISHED = Counter(
    "booking_rush_outbox_published_total", "Outbox messages published to Kafka", ["topic"]
)
BACKLOG = Gauge("booking_rush_outbox_backlog", "Outbox messages not yet published")


class OutboxRelay:
    name = "outbox-relay"
    # An idle tick waits for the outbox trigger's NOTIFY (or interval_s), so no sleep after it.
    idle_interval_s = 0.0
    # A publish (and a producer start/stop) gets this long; then the producer is rebuilt.
    kafka_timeout_s = 10.0

    def __init__(self, settings: WorkerSettings, pool: asyncpg.Pool) -> None:
        self.settings = settings
        self.pool = pool
        self.producer: AIOKafkaProducer | None = None  # started by start(), rebuilt in place
        self._listener: asyncpg.Connection | None = None
        self._wake = asyncio.Event()
        self._idle = False
        self._broken = False
        self._failed_topics: set[str] = set()
        self.rebuilds = 0
        self._failed_publishes = 0

    @classmethod
    def provisioned(cls, settings: WorkerSettings) -> Provisioned[asyncpg.Pool]:
        return Provisioned(
            cls,
            lambda: open_pool(settings, max_size=2, close_timeout_s=POOL_CLOSE_S),
            lambda pool: cls(settings, pool),
        )

    async def start(self) -> None:
        await self._open_producer()
        self._listener = await asyncpg.connect(self.settings.database_url)
        await self._listener.add_listener("outbox", self._on_notify)

    async def _open_producer(self) -> AIOKafkaProducer:
        producer = create_producer(
            self.settings.kafka_bootstrap, idempotence=self.settings.kafka_idempotence
        )
        try:
            await asyncio.wait_for(producer.start(), self.kafka_timeout_s)
        except BaseException:
            await close_quietly(producer, 2.0)
            raise
        self.producer = producer
        return producer

    async def rebuild_producer(self) -> AIOKafkaProducer:
        log.warning("%s: rebuilding its Kafka producer", self.name)
        KAFKA_REBUILDS.labels(self.name).inc()
        self.rebuilds += 1
        producer, self.producer = self.producer, None
        await close_quietly(producer, self.kafka_timeout_s / 2)
        if self._failed_topics:
            await ensure_topics(
                self.settings.kafka_bootstrap,
                sorted(self._failed_topics),
                partitions=self.settings.kafka_partitions,
                timeout_s=self.kafka_timeout_s,
            )
        rebuilt = await self._open_producer()
        self._broken = False
        self._failed_topics.clear()
        return rebuilt

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def stop(self) -> None:
        if self._listener is not None:
            try:
                await asyncio.wait_for(self._listener.close(), 2.0)
            except (Exception, TimeoutError):
                self._listener.terminate()
        producer, self.producer = self.producer, None
        await close_quietly(producer, self.kafka_timeout_s / 2)

    async def tick(self) -> int:
        if self._idle:
            try:
                await asyncio.wait_for(self._wake.wait(), self.settings.interval_s)
            except TimeoutError:
                pass
        self._wake.clear()
        producer = self.producer
        if self._broken or producer is None:
            producer = await self.rebuild_producer()
        try:
            handled = await self._relay_batch(producer)
        except KafkaError as exc:
            log.warning("%s: publish failed (%s: %s)", self.name, type(exc).__name__, exc)
            self._broken = True
            self._failed_publishes += 1
            if self._failed_publishes >= PUBLISH_FAILURES_BEFORE_EXIT:
                # Rebuilt producers keep failing: an old one may still be retrying its batches
                # inside this process (its stop is only bounded, never forced), which a broker
                # that came back empty has been seen to choke on. A fresh process has none.
                raise WorkerUnhealthyError(
                    f"{self.name}: {self._failed_publishes} publishes failed in a row though "
                    "the producer was rebuilt: exiting so a fresh process takes over"
                ) from exc
            raise
        if handled:
            self._failed_publishes = 0
        self._idle = handled == 0
        return handled

    async def _send(
        self, producer: AIOKafkaProducer, row: asyncpg.Record
    ) -> asyncio.Future[object]:
        stored = {k: str(v) for k, v in (row["headers"] or {}).items()}
        # Tracing on: a PRODUCER span continues the trace of the transaction that wrote the
        # row, and the message carries that span's context. Off: headers go out as stored.
        with producer_span(row["topic"], stored) as carried:
            headers = [(k, v.encode()) for k, v in carried.items()]
            future: asyncio.Future[object] = await producer.send(
                row["topic"],
                value=orjson.dumps(row["payload"]),
                key=row["key"].encode(),
                headers=headers or None,
            )
            return future

    async def _relay_batch(self, producer: AIOKafkaProducer) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            if not await lock_outbox_relay(conn, _RELAY_LOCK):
                return 0
            rows = await unpublished_messages(conn, self.settings.batch_size)
            if rows:
                await self._publish(producer, rows)
                await mark_published(conn, [row["id"] for row in rows], datetime.now(UTC))
            BACKLOG.set(await outbox_backlog(conn))
        return len(rows)

    async def _publish(self, producer: AIOKafkaProducer, rows: list[asyncpg.Record]) -> None:
        """Sends every row and waits for every acknowledgement, within `kafka_timeout_s`; any
        failure raises (and the caller marks nothing)."""
        pending: list[asyncio.Future[object]] = []
        try:
            async with asyncio.timeout(self.kafka_timeout_s):
                for row in rows:
                    pending.append(await self._send(producer, row))
                await asyncio.gather(*pending)
        except BaseException as exc:
            self._failed_topics.update(row["topic"] for row in rows)
            for future in pending:
                future.cancel()
            if isinstance(exc, TimeoutError):
                raise KafkaTimeoutError("publish not acknowledged in time") from exc
            raise
        for row in rows:
            PUBLISHED.labels(row["topic"]).inc()
