"""The outbox (messages waiting for the relay) and the processed-message ledger (what each
consumer has done, so a redelivery does nothing twice)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from booking.store import Conn


async def insert_outbox(
    conn: Conn,
    *,
    message_id: str,
    topic: str,
    key: str,
    payload: Any,
    headers: Mapping[str, str],
) -> None:
    await conn.execute(
        """INSERT INTO outbox (message_id, topic, key, payload, headers)
           VALUES ($1, $2, $3, $4, $5)""",
        uuid.UUID(message_id),
        topic,
        key,
        payload,
        dict(headers),
    )


async def lock_relay(conn: asyncpg.Connection, lock_id: int) -> bool:
    """One relay at a time per transaction (copies wait their turn, never publish twice)."""
    return bool(await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", lock_id))


async def unpublished(conn: Conn, limit: int) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            """SELECT id, topic, key, payload, headers FROM outbox
               WHERE published_at IS NULL ORDER BY id LIMIT $1""",
            limit,
        )
    )


async def mark_published(conn: Conn, ids: Sequence[int], now: datetime) -> None:
    await conn.execute(
        "UPDATE outbox SET published_at = $2 WHERE id = ANY($1::bigint[])", list(ids), now
    )


async def backlog(conn: Conn) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"))


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


async def was_processed(conn: Conn, consumer: str, message_id: str) -> bool:
    found = await conn.fetchval(
        "SELECT true FROM processed_messages WHERE consumer = $1 AND message_id = $2::text::uuid",
        consumer,
        message_id,
    )
    return bool(found)
