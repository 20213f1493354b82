"""aiokafka producer and consumer construction with the project's delivery settings."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer


def create_producer(bootstrap: str, *, idempotence: bool) -> AIOKafkaProducer:
    """acks=all always; idempotence only where the broker has it (Redpanda/Kafka, not Tansu)."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=idempotence,
        linger_ms=2,
        request_timeout_ms=10_000,
    )


def create_consumer(
    bootstrap: str, *topics: str, group_id: str, session_timeout_ms: int = 10_000
) -> AIOKafkaConsumer:
    """Manual commits: the caller commits after the work is done (and recorded as processed)."""
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=max(100, session_timeout_ms // 3),
        max_poll_records=200,
        # A topic created again (the broker came back empty) is seen within seconds, not the
        # default 5 minutes.
        metadata_max_age_ms=5_000,
    )
