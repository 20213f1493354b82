"""The discipline every Kafka consumer worker follows (ARCHITECTURE.md §5).

- Manual commit, after the work: a message's offset is committed only once its handler returned
  (or it went to the dead-letter topic), so a crash redelivers it.
- Redelivery is harmless: handlers call `claim_message` inside the PostgreSQL transaction of
  their work; a message id already claimed is skipped.
- Errors decide their own fate: `retriable` ones (booking.errors classes, aiokafka errors, lost
  connections) are retried with exponential backoff; when the attempts run out the partition is
  rewound and the tick fails, so the message comes back later. Anything else, and malformed
  messages, go to `<topic>.dlq` with the reason in the headers, and the consumer goes on.

A worker runs under `workers.runtime.run_periodic`: one tick is one poll (blocking up to
`poll_timeout_ms`), so it sets `idle_interval_s = 0`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import asyncpg
import redis.exceptions
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from booking.db import create_pool
from booking.events import Envelope, dlq_topic
from booking.kafka import create_consumer, create_producer
from booking.metrics import KAFKA_CONSUMED, KAFKA_DLQ, KAFKA_LAG, KAFKA_PRODUCED, KAFKA_RETRIES
from common.tracing import consumer_span
from workers.settings import WorkerSettings

log = logging.getLogger(__name__)

_TRANSIENT = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)


class MalformedMessageError(ValueError):
    """The message cannot be handled as it is (bad shape, unknown type): dead-letter it."""


def is_retriable(exc: BaseException) -> bool:
    return bool(getattr(exc, "retriable", False)) or isinstance(exc, _TRANSIENT)


async def claim_message(conn: asyncpg.Connection, consumer: str, message_id: str) -> bool:
    """Records the message as processed by `consumer` (call in the work's transaction).
    False: it was processed before (or is being processed right now by another copy)."""
    claimed = await conn.fetchval(
        """INSERT INTO processed_messages (consumer, message_id) VALUES ($1, $2::text::uuid)
           ON CONFLICT DO NOTHING RETURNING true""",
        consumer,
        message_id,
    )
    return bool(claimed)


async def was_processed(
    conn: asyncpg.Connection | asyncpg.Pool, consumer: str, message_id: str
) -> bool:
    found = await conn.fetchval(
        "SELECT true FROM processed_messages WHERE consumer = $1 AND message_id = $2::text::uuid",
        consumer,
        message_id,
    )
    return bool(found)


async def ensure_topics(bootstrap: str, topics: Sequence[str], *, partitions: int) -> None:
    """Creates the topics that do not exist yet (a consumer subscribed to a missing topic would
    only notice it at its next metadata refresh)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if missing:
            # An "already exists" answer (another process was faster) is fine.
            await admin.create_topics([NewTopic(t, partitions, 1) for t in missing])
    finally:
        await admin.close()


class ConsumerWorker:
    """Base class: subclasses set `name` and implement `handle(envelope)`; `housekeeping()`
    runs every `housekeeping_interval_s` between polls."""

    name = "consumer"
    idle_interval_s = 0.0
    housekeeping_interval_s = 1.0

    def __init__(
        self,
        settings: WorkerSettings,
        *,
        topics: Sequence[str],
        group_id: str,
        poll_timeout_ms: int = 500,
        max_attempts: int = 5,
        backoff_s: float = 0.1,
    ) -> None:
        self.settings = settings
        self.topics = list(topics)
        self.group_id = group_id
        self.poll_timeout_ms = poll_timeout_ms
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.pool: asyncpg.Pool | None = None
        self.producer: AIOKafkaProducer | None = None
        self.consumer: AIOKafkaConsumer | None = None
        self._lag: dict[TopicPartition, int] = {}
        self._next_housekeeping = 0.0

    async def start(self) -> None:
        self.pool = await create_pool(self.settings.database_url, min_size=1, max_size=4)
        await ensure_topics(
            self.settings.kafka_bootstrap,
            [*self.topics, *(dlq_topic(t) for t in self.topics)],
            partitions=self.settings.kafka_partitions,
        )
        self.producer = create_producer(
            self.settings.kafka_bootstrap, idempotence=self.settings.kafka_idempotence
        )
        await self.producer.start()
        self.consumer = create_consumer(
            self.settings.kafka_bootstrap,
            *self.topics,
            group_id=self.group_id,
            session_timeout_ms=self.settings.kafka_session_timeout_ms,
        )
        await self.consumer.start()
        await self.setup()

    async def stop(self) -> None:
        await self.teardown()
        if self.consumer is not None:
            await self.consumer.stop()
        if self.producer is not None:
            await self.producer.stop()
        if self.pool is not None:
            await self.pool.close()

    async def setup(self) -> None:
        """Open what the handler needs (after the pool and the Kafka clients)."""

    async def teardown(self) -> None:
        """Close what `setup` opened."""

    async def handle(self, envelope: Envelope) -> None:
        raise NotImplementedError

    async def housekeeping(self) -> int:
        """Periodic work besides the messages; returns how many items it handled."""
        return 0

    async def tick(self) -> int:
        assert self.consumer is not None
        handled = 0
        loop = asyncio.get_running_loop()
        if loop.time() >= self._next_housekeeping:
            self._next_housekeeping = loop.time() + self.housekeeping_interval_s
            handled += await self.housekeeping()
        batch = await self.consumer.getmany(timeout_ms=self.poll_timeout_ms)
        done: dict[TopicPartition, int] = {}
        try:
            for tp, messages in batch.items():
                for message in messages:
                    await self._process(message)
                    await self.consumer.commit({tp: message.offset + 1})
                    done[tp] = message.offset + 1
                    handled += 1
                if messages:
                    self._record_lag(tp, messages[-1].offset + 1)
        except BaseException:
            # Fetched but not handled: rewind so they are delivered again, in order.
            for tp, messages in batch.items():
                if messages and done.get(tp, messages[0].offset) <= messages[-1].offset:
                    self.consumer.seek(tp, done.get(tp, messages[0].offset))
            raise
        return handled

    async def _process(self, message: ConsumerRecord) -> None:
        try:
            envelope = Envelope.decode(message.value or b"")
        except ValueError as exc:
            await self._dead_letter(message, f"malformed: {exc}")
            return
        with consumer_span(f"{message.topic} process", message.headers):
            await self._handle_with_retries(message, envelope)

    async def _handle_with_retries(self, message: ConsumerRecord, envelope: Envelope) -> None:
        for attempt in range(1, self.max_attempts + 1):
            try:
                await self.handle(envelope)
            except Exception as exc:
                if not is_retriable(exc):
                    log.exception("%s: %s to the DLQ", self.name, envelope.type)
                    await self._dead_letter(message, f"{type(exc).__name__}: {exc}")
                    return
                if attempt == self.max_attempts:
                    log.warning("%s: %s still failing: %s", self.name, envelope.type, exc)
                    raise
                KAFKA_RETRIES.labels(self.name, message.topic).inc()
                await asyncio.sleep(min(self.backoff_s * 2 ** (attempt - 1), 5.0))
            else:
                KAFKA_CONSUMED.labels(self.name, message.topic, "ok").inc()
                return

    async def _dead_letter(self, message: ConsumerRecord, reason: str) -> None:
        assert self.producer is not None
        target = dlq_topic(message.topic)
        headers = [
            *(message.headers or ()),
            ("dlq-reason", reason[:2000].encode()),
            ("dlq-consumer", self.name.encode()),
            ("dlq-source", f"{message.topic}/{message.partition}/{message.offset}".encode()),
        ]
        await self.producer.send_and_wait(
            target, value=message.value, key=message.key, headers=headers
        )
        KAFKA_PRODUCED.labels(target).inc()
        KAFKA_DLQ.labels(message.topic).inc()
        KAFKA_CONSUMED.labels(self.name, message.topic, "dlq").inc()

    def _record_lag(self, tp: TopicPartition, next_offset: int) -> None:
        assert self.consumer is not None
        end = self.consumer.highwater(tp)
        if end is None:
            return
        self._lag[tp] = max(0, end - next_offset)
        total = sum(lag for part, lag in self._lag.items() if part.topic == tp.topic)
        KAFKA_LAG.labels(self.name, tp.topic).set(total)
