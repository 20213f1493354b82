"""The notifier's rig: a real SMTP server, the real broker, the test database, and notification
envelopes produced to a topic of the test's own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from booking.kafka import create_producer
from booking.messaging import TOPIC_NOTIFICATIONS, Envelope
from booking.notifications import EMAIL_SEND, Email
from tests.notifier.smtp_servers import PlannedDrop, smtp_server
from workers.settings import WorkerSettings
from workers.smtp import SmtpConfig


@dataclass
class MailRig:
    pool: Any
    drop: PlannedDrop
    port: int
    settings: WorkerSettings
    namespace: str

    @property
    def topic(self) -> str:
        return f"{TOPIC_NOTIFICATIONS}.{self.namespace}"

    async def publish(self, emails: Sequence[Email]) -> list[str]:
        """Each email as the outbox relay would publish it; their notification ids."""
        now = datetime.now(UTC)
        envelopes = [Envelope.new(EMAIL_SEND, mail.key, mail.payload(), now) for mail in emails]
        producer = create_producer(self.settings.kafka_bootstrap, idempotence=False)
        await producer.start()
        try:
            for envelope in envelopes:
                await producer.send_and_wait(
                    self.topic, value=envelope.encode(), key=envelope.key.encode()
                )
        finally:
            await producer.stop()
        return [envelope.id for envelope in envelopes]

    async def processed(self) -> int:
        return int(
            await self.pool.fetchval(
                "SELECT count(*) FROM processed_messages WHERE consumer = 'notifier'"
            )
        )

    async def delivery(self, notification_id: str) -> Any:
        return await self.pool.fetchrow(
            "SELECT * FROM email_deliveries WHERE message_id = $1", uuid.UUID(notification_id)
        )


def worker_settings(infra: Any, namespace: str, port: int, **options: Any) -> WorkerSettings:
    return WorkerSettings(
        redis_url=infra.redis_url,
        database_url=infra.database_url,
        kafka_bootstrap=infra.kafka_bootstrap,
        kafka_session_timeout_ms=1000,
        kafka_namespace=namespace,
        smtp=SmtpConfig(port=port, timeout_s=5.0),
        notifier_max_attempts=options.pop("max_attempts", 3),
        notifier_backoff_s=options.pop("backoff_s", 0.05),
        **options,
    )


@pytest.fixture
async def mail_rig(
    clean_db: Any, infra: Any, unique: str, tmp_path: Path
) -> AsyncIterator[MailRig]:
    drop = PlannedDrop(tmp_path / "mail")
    async with smtp_server(drop) as port:
        yield MailRig(
            pool=clean_db,
            drop=drop,
            port=port,
            settings=worker_settings(infra, f"mail{unique}", port),
            namespace=f"mail{unique}",
        )
