"""A consumer and the outbox relay keep working after their broker is SIGKILLed and comes back
empty (issue 12): no manual action, no wedged commit loop. The test runs its own Tansu broker so
it may kill it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from booking.messaging import Envelope, add_to_outbox
from tests.workers.kafka_rig import (
    ClaimingRecorder,
    own_kafka,
    processed_ids,
    supervised,
    ticking,
    wait_for,
)
from workers.outbox_relay import OutboxRelay
from workers.resources import open_pool
from workers.settings import WorkerSettings


async def _outbox(pool: Any, topic: str, count: int, tag: str) -> list[str]:
    now = datetime.now(UTC)
    envelopes = [Envelope.new("thing.happened", f"k{n}", {"tag": tag}, now) for n in range(count)]
    async with pool.acquire() as conn, conn.transaction():
        for envelope in envelopes:
            await add_to_outbox(conn, topic, envelope)
    return [envelope.id for envelope in envelopes]


async def test_consumer_and_relay_survive_a_broker_restarted_empty(
    clean_db: Any, migrated_database: str, unique: str, tmp_path: Path
) -> None:
    topic = f"test.restart.{unique}"
    with own_kafka(tmp_path / "kafka") as broker:
        settings = WorkerSettings(
            database_url=migrated_database,
            kafka_bootstrap=broker.bootstrap,
            kafka_session_timeout_ms=1500,
            interval_s=0.2,
        )
        # The relay may end itself when rebuilt producers keep failing (a fresh process then
        # takes over, as the supervisor would start one): that is recovery too.
        async with (
            open_pool(settings, max_size=4) as pool,
            supervised(lambda: OutboxRelay.provisioned(settings)),
        ):
            consumer = ClaimingRecorder(
                settings,
                pool,
                topics=[topic],
                group_id=f"g-{unique}",
                poll_timeout_ms=200,
                delay_s=0.2,
            )
            name = consumer.name
            async with ticking(consumer) as consumer_task:
                before = await _outbox(clean_db, topic, 3, "before")
                await wait_for(lambda: _all_in(clean_db, name, before), within=60)

                # Busy when the broker dies: each message takes 0.2 s, so its commits fail.
                await _outbox(clean_db, topic, 10, "in flight")
                await wait_for(lambda: _published(clean_db), within=30)
                await asyncio.to_thread(broker.kill)
                await asyncio.sleep(0.5)  # the dead broker is seen; not an assertion
                await asyncio.to_thread(broker.start)
                # The workers recreate the topic themselves. Writing before they have is a race
                # the embedded broker (Tansu, in memory) can lose messages to, acknowledged or
                # not; in the product PostgreSQL re-drives such losses (tests/payments, make
                # chaos), here the subject is that both workers recover without help.
                await wait_for(lambda: _topic_exists(broker.bootstrap, topic), within=60)

                after = await _outbox(clean_db, topic, 3, "after")
                await wait_for(lambda: _all_in(clean_db, name, after), within=90)
                assert not consumer_task.done()

        left = await clean_db.fetchval(
            "SELECT count(*) FROM outbox WHERE published_at IS NULL AND topic = $1", topic
        )
        assert left == 0


async def _topic_exists(bootstrap: str, topic: str) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await admin.start()
        return topic in await admin.list_topics()
    except KafkaError:
        return False
    finally:
        await admin.close()


async def _all_in(pool: Any, consumer: str, ids: list[str]) -> bool:
    return set(ids) <= await processed_ids(pool, consumer)


async def _published(pool: Any) -> bool:
    left = await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
    return int(left) == 0
