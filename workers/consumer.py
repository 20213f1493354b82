"""The discipline every Kafka consumer worker follows.

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
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaTimeoutError
from prometheus_client import Counter

from booking.kafka import create_consumer, create_producer
from booking.messaging import Envelope, dlq_topic
from booking.metrics import KAFKA_CONSUMED, KAFKA_DLQ, KAFKA_LAG, KAFKA_PRODUCED, KAFKA_RETRIES
from common.tracing import consumer_span
from workers.kafka_clients import (
    KAFKA_REBUILDS,
    KafkaClients,
    close_quietly,
    ensure_topics,
    is_kafka_failure,
)
from workers.settings import WorkerSettings

log = logging.getLogger(__name__)

KAFKA_LOG_RESETS = Counter(
    "booking_rush_kafka_partition_log_resets_total",
    "Partitions read again from the beginning because the broker lost their log",
    ["worker"],
)

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


# A consumer worker's pool gets this long to close (then it is terminated).
POOL_CLOSE_S = 5.0


class MalformedMessageError(ValueError):
    """The message cannot be handled as it is (bad shape, unknown type): dead-letter it."""


def is_retriable(exc: BaseException) -> bool:
    return bool(getattr(exc, "retriable", False)) or isinstance(exc, _TRANSIENT)


class ConsumerWorker:
    """Base class: subclasses set `name` and implement `handle(envelope)`; `housekeeping()`
    runs every `housekeeping_interval_s` between polls. The PostgreSQL pool comes ready (see
    `workers.resources`); the Kafka clients are its own.

    Kafka clients are rebuilt in place when the broker fails under them (issue 12): a Kafka error
    out of a tick (a commit that fails or does not finish within `kafka_timeout_s`, a lost
    connection, an unknown topic after the broker came back empty) marks them broken; the next
    tick stops them (bounded), creates the topics again and starts new ones. Re-reading from the
    committed (or earliest) offset is harmless: processed messages are skipped. A rebalance's
    CommitFailedError alone does not rebuild (that would rebalance again); it rewinds what is
    still assigned and goes on, and rebuilds only if such failures repeat.
    """

    name = "consumer"
    idle_interval_s = 0.0
    housekeeping_interval_s = 1.0
    # A Kafka call (commit, client start/stop, topic creation) gets this long.
    kafka_timeout_s = 10.0
    # No partition assigned for this long: make sure the topics exist (the broker may have come
    # back empty while nothing was being committed) and rebuild if they did not.
    unassigned_check_s = 5.0
    # Consecutive rebalance-type commit failures tolerated before rebuilding anyway.
    rebalance_failures_before_rebuild = 3

    def __init__(
        self,
        settings: WorkerSettings,
        pool: asyncpg.Pool,
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
        self.pool = pool
        self.kafka: KafkaClients | None = None  # started by start(), replaced by rebuild_kafka()
        self.rebuilds = 0
        self._lag: dict[TopicPartition, int] = {}
        self._next_housekeeping = 0.0
        self._broken = False
        self._kafka_failures = 0
        self._unassigned_since: float | None = None
        self._next_position_check = 0.0

    async def start(self) -> None:
        await self._open_kafka()
        await self.setup()

    async def stop(self) -> None:
        try:
            await self.teardown()
        finally:
            await self._close_kafka()

    async def _open_kafka(self) -> KafkaClients:
        bootstrap = self.settings.kafka_bootstrap
        await ensure_topics(
            bootstrap,
            [*self.topics, *(dlq_topic(t) for t in self.topics)],
            partitions=self.settings.kafka_partitions,
            timeout_s=self.kafka_timeout_s,
        )
        producer = create_producer(bootstrap, idempotence=self.settings.kafka_idempotence)
        consumer = create_consumer(
            bootstrap,
            *self.topics,
            group_id=self.group_id,
            session_timeout_ms=self.settings.kafka_session_timeout_ms,
        )
        try:
            async with asyncio.timeout(self.kafka_timeout_s):
                await producer.start()
                await consumer.start()
        except BaseException:
            await close_quietly(consumer, 2.0)
            await close_quietly(producer, 2.0)
            raise
        self.kafka = kafka = KafkaClients(producer=producer, consumer=consumer)
        self._lag.clear()
        self._unassigned_since = None
        return kafka

    async def _close_kafka(self) -> None:
        kafka, self.kafka = self.kafka, None
        if kafka is not None:
            await close_quietly(kafka.consumer, self.kafka_timeout_s / 2)
            await close_quietly(kafka.producer, self.kafka_timeout_s / 2)

    async def rebuild_kafka(self) -> KafkaClients:
        """Replaces the consumer and the producer with new ones (topics created again)."""
        log.warning("%s: rebuilding its Kafka clients", self.name)
        KAFKA_REBUILDS.labels(self.name).inc()
        self.rebuilds += 1
        self._broken = True
        await self._close_kafka()
        kafka = await self._open_kafka()
        self._broken = False
        self._kafka_failures = 0
        return kafka

    async def setup(self) -> None:
        """Open what the handler needs (after the Kafka clients)."""

    async def teardown(self) -> None:
        """Close what `setup` opened."""

    async def handle(self, envelope: Envelope) -> None:
        raise NotImplementedError

    async def housekeeping(self) -> int:
        """Periodic work besides the messages; returns how many items it handled."""
        return 0

    async def tick(self) -> int:
        kafka = self.kafka
        if self._broken or kafka is None:
            kafka = await self.rebuild_kafka()
        handled = 0
        loop = asyncio.get_running_loop()
        try:
            if loop.time() >= self._next_housekeeping:
                self._next_housekeeping = loop.time() + self.housekeeping_interval_s
                handled += await self.housekeeping()
            handled += await self._poll_and_process(kafka)
            await self._check_assignment(kafka.consumer, loop.time())
        except Exception as exc:
            if is_kafka_failure(exc):
                self._on_kafka_failure(exc)
            raise
        self._kafka_failures = 0
        return handled

    def _on_kafka_failure(self, exc: BaseException) -> None:
        self._kafka_failures += 1
        rebalance = isinstance(exc, (CommitFailedError, IllegalStateError))
        if not rebalance or self._kafka_failures >= self.rebalance_failures_before_rebuild:
            log.warning(
                "%s: Kafka failure (%s: %s): clients will be rebuilt",
                self.name,
                type(exc).__name__,
                exc,
            )
            self._broken = True

    async def _check_assignment(self, consumer: AIOKafkaConsumer, now: float) -> None:
        if consumer.assignment():
            self._unassigned_since = None
            if now >= self._next_position_check:
                self._next_position_check = now + self.unassigned_check_s
                await self._reread_lost_logs(consumer)
            return
        if self._unassigned_since is None:
            self._unassigned_since = now
        elif now - self._unassigned_since > self.unassigned_check_s:
            self._unassigned_since = now
            created = await ensure_topics(
                self.settings.kafka_bootstrap,
                [*self.topics, *(dlq_topic(t) for t in self.topics)],
                partitions=self.settings.kafka_partitions,
                timeout_s=self.kafka_timeout_s,
            )
            if created:
                log.warning("%s: topics %s were missing: rebuilding", self.name, created)
                self._broken = True

    async def _reread_lost_logs(self, consumer: AIOKafkaConsumer) -> None:
        """A partition whose end is now before our position lost its log: the broker came back
        empty and the topic was created again, its offsets starting over (and a commit made in
        between may even have stored our old position). Waiting there would skip every new
        message until the log grew past it, so read the partition from its beginning again
        (the processed-message table makes the repeats harmless). A rebalance between the
        commit and the seek only makes the next check find the same thing."""
        assigned = list(consumer.assignment())
        async with asyncio.timeout(self.kafka_timeout_s):
            ends = await consumer.end_offsets(assigned)
            lost = []
            for tp in assigned:
                end = ends.get(tp)
                position = await consumer.position(tp)
                if end is not None and position > end:
                    lost.append(tp)
                    log.warning(
                        "%s: %s ends at %d, before our position %d (the broker lost its log): "
                        "reading it again from the beginning",
                        self.name,
                        tp,
                        end,
                        position,
                    )
                    KAFKA_LOG_RESETS.labels(self.name).inc()
            if not lost:
                return
            # Commit the beginning too: every rebalance puts the position back to the committed
            # offset, which may be the stale one a commit stored after the broker came back.
            beginnings = await consumer.beginning_offsets(lost)
            await consumer.commit({tp: beginnings[tp] for tp in lost})
            for tp in lost:
                consumer.seek(tp, beginnings[tp])

    async def _commit(self, consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int) -> None:
        try:
            async with asyncio.timeout(self.kafka_timeout_s):
                await consumer.commit({tp: offset})
        except TimeoutError as exc:
            # aiokafka retries a retriable commit error (UnknownTopicOrPartition after the broker
            # came back empty) forever: bound it and let the tick fail into a rebuild.
            raise KafkaTimeoutError(f"commit of {tp} did not finish") from exc

    async def _poll_and_process(self, kafka: KafkaClients) -> int:
        consumer = kafka.consumer
        batch = await consumer.getmany(timeout_ms=self.poll_timeout_ms)
        handled = 0
        done: dict[TopicPartition, int] = {}
        try:
            for tp, messages in batch.items():
                for message in messages:
                    if tp not in consumer.assignment():
                        # Revoked by a rebalance while this batch ran: its new owner reads it
                        # from the committed offset; neither process nor commit it here.
                        break
                    await self._process(kafka.producer, message)
                    await self._commit(consumer, tp, message.offset + 1)
                    done[tp] = message.offset + 1
                    handled += 1
                if tp in done:
                    self._record_lag(consumer, tp, done[tp])
        except BaseException:
            self._rewind(consumer, batch, done)
            raise
        return handled

    def _rewind(
        self,
        consumer: AIOKafkaConsumer,
        batch: dict[TopicPartition, list[ConsumerRecord]],
        done: dict[TopicPartition, int],
    ) -> None:
        """Fetched but not handled: rewind so they are delivered again, in order. Only partitions
        still assigned can (and need to) be rewound; every one of them is."""
        assigned = consumer.assignment()
        for tp, messages in batch.items():
            if not messages or tp not in assigned:
                continue
            position = done.get(tp, messages[0].offset)
            if position <= messages[-1].offset:
                try:
                    consumer.seek(tp, position)
                except (IllegalStateError, AssertionError, ValueError) as exc:
                    log.warning("%s: cannot rewind %s: %s", self.name, tp, exc)
                    self._broken = True

    async def _process(self, producer: AIOKafkaProducer, message: ConsumerRecord) -> None:
        try:
            envelope = Envelope.decode(message.value or b"")
        except ValueError as exc:
            await self._dead_letter(producer, message, f"malformed: {exc}")
            return
        with consumer_span(f"{message.topic} process", message.headers):
            await self._handle_with_retries(producer, message, envelope)

    async def _handle_with_retries(
        self, producer: AIOKafkaProducer, message: ConsumerRecord, envelope: Envelope
    ) -> None:
        for attempt in range(1, self.max_attempts + 1):
            try:
                await self.handle(envelope)
            except Exception as exc:
                if not is_retriable(exc):
                    log.exception("%s: %s to the DLQ", self.name, envelope.type)
                    await self._dead_letter(producer, message, f"{type(exc).__name__}: {exc}")
                    return
                if attempt == self.max_attempts:
                    log.warning("%s: %s still failing: %s", self.name, envelope.type, exc)
                    raise
                KAFKA_RETRIES.labels(self.name, message.topic).inc()
                await asyncio.sleep(min(self.backoff_s * 2 ** (attempt - 1), 5.0))
            else:
                KAFKA_CONSUMED.labels(self.name, message.topic, "ok").inc()
                return

    async def _dead_letter(
        self, producer: AIOKafkaProducer, message: ConsumerRecord, reason: str
    ) -> None:
        target = dlq_topic(message.topic)
        headers = [
            *(message.headers or ()),
            ("dlq-reason", reason[:2000].encode()),
            ("dlq-consumer", self.name.encode()),
            ("dlq-source", f"{message.topic}/{message.partition}/{message.offset}".encode()),
        ]
        await producer.send_and_wait(target, value=message.value, key=message.key, headers=headers)
        KAFKA_PRODUCED.labels(target).inc()
        KAFKA_DLQ.labels(message.topic).inc()
        KAFKA_CONSUMED.labels(self.name, message.topic, "dlq").inc()

    def _record_lag(self, consumer: AIOKafkaConsumer, tp: TopicPartition, next_offset: int) -> None:
        if tp not in consumer.assignment():
            return
        end = consumer.highwater(tp)
        if end is None:
            return
        self._lag[tp] = max(0, end - next_offset)
        total = sum(lag for part, lag in self._lag.items() if part.topic == tp.topic)
        KAFKA_LAG.labels(self.name, tp.topic).set(total)
