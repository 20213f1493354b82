"""The Kafka plumbing the consumer workers and the outbox relay share: topics created on
demand, clients stopped within a bound, and the typed holder of a consumer worker's clients.

Kafka clients are the one thing a worker opens itself (in `start()`, not through
`workers.resources`): they are rebuilt in place when the broker fails under them (issue 12).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError
from prometheus_client import Counter

log = logging.getLogger(__name__)

KAFKA_REBUILDS = Counter(
    "booking_rush_kafka_client_rebuilds_total",
    "Times a worker replaced its Kafka clients after a broker failure",
    ["worker"],
)


@dataclass(frozen=True, slots=True)
class KafkaClients:
    """A consumer worker's started producer (replies, dead letters) and consumer."""

    producer: AIOKafkaProducer
    consumer: AIOKafkaConsumer


async def ensure_topics(
    bootstrap: str, topics: Sequence[str], *, partitions: int, timeout_s: float = 10.0
) -> list[str]:
    """Creates the topics that do not exist yet (a consumer subscribed to a missing topic would
    only notice it at its next metadata refresh); returns the ones it created. A broker that
    restarted empty has lost every topic, so this runs again whenever the Kafka clients are
    rebuilt."""
    async with asyncio.timeout(timeout_s):
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [t for t in topics if t not in existing]
            if missing:
                # An "already exists" answer (another process was faster) is fine.
                await admin.create_topics([NewTopic(t, partitions, 1) for t in missing])
            return missing
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(admin.close(), 2.0)


async def close_quietly(
    client: AIOKafkaConsumer | AIOKafkaProducer | None, timeout_s: float
) -> None:
    """Stops a Kafka client that may talk to a dead broker: bounded, errors only logged."""
    if client is None:
        return
    try:
        await asyncio.wait_for(client.stop(), timeout_s)
    except (Exception, TimeoutError) as exc:
        log.warning("stopping %s: %s", type(client).__name__, exc or type(exc).__name__)


def is_kafka_failure(exc: BaseException) -> bool:
    """A failure of the Kafka clients (not of the work): the tick's clients may need rebuilding."""
    return isinstance(exc, KafkaError)
