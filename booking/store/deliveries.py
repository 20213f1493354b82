"""The notifier's ledger of email attempts (`email_deliveries`, migration 0010)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

SENDING, FAILED, SENT, DEAD = "sending", "failed", "sent", "dead"


@dataclass(frozen=True, slots=True)
class Attempt:
    """What `begin_attempt` found and did. `state` is the row's state before this call."""

    number: int  # this attempt's number (0: none begun, see `state`)
    state: str  # 'new', 'failed', 'sending' (the last try's outcome is unknown), 'sent', 'dead'
    last_error: str = ""


# Session-level advisory locks on (this class, hashtext(message id)): held by the connection
# of the try that sends an email, gone with it when the process dies.
_LOCK_CLASS = 7_413_020


async def lock_delivery(conn: asyncpg.Connection, message_id: str) -> bool:
    """False: another copy is sending this email right now."""
    return bool(
        await conn.fetchval(
            "SELECT pg_try_advisory_lock($1, hashtext($2))", _LOCK_CLASS, message_id
        )
    )


async def unlock_delivery(conn: asyncpg.Connection, message_id: str) -> None:
    await conn.execute("SELECT pg_advisory_unlock($1, hashtext($2))", _LOCK_CLASS, message_id)


async def park(
    conn: asyncpg.Connection,
    message_id: str,
    *,
    kind: str,
    recipient: str,
    envelope: Any,
    retry_in_s: float,
    reason: str,
) -> None:
    """Records the email to be tried `retry_in_s` from now, without trying it (a row that exists
    already keeps its state: whoever owns it goes on)."""
    await conn.execute(
        """INSERT INTO email_deliveries
               (message_id, kind, recipient, envelope, state, next_attempt_at, last_error)
           VALUES ($1, $2, $3, $4, 'failed', now() + make_interval(secs => $5), $6)
           ON CONFLICT DO NOTHING""",
        uuid.UUID(message_id),
        kind,
        recipient,
        envelope,
        retry_in_s,
        reason,
    )


async def begin_attempt(
    conn: asyncpg.Connection,
    message_id: str,
    *,
    kind: str,
    recipient: str,
    envelope: Any,
    lease_s: float,
) -> Attempt:
    """Counts one more attempt and marks it `sending` (committed on return: call holding
    `lock_delivery`, before sending; the retry pass leaves it alone for `lease_s`), unless the
    email was already sent or given up on: then nothing changes and the number is 0."""
    key = uuid.UUID(message_id)
    async with conn.transaction():
        await conn.execute(
            """INSERT INTO email_deliveries (message_id, kind, recipient, envelope)
               VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING""",
            key,
            kind,
            recipient,
            envelope,
        )
        row = await conn.fetchrow(
            """SELECT state, coalesce(last_error, '') AS last_error
               FROM email_deliveries WHERE message_id = $1 FOR UPDATE""",
            key,
        )
        assert row is not None
        state = str(row["state"])
        if state in (SENT, DEAD):
            return Attempt(0, state, str(row["last_error"]))
        number = await conn.fetchval(
            """UPDATE email_deliveries
               SET state = 'sending', attempts = attempts + 1, last_attempt_at = now(),
                   next_attempt_at = now() + make_interval(secs => $2)
               WHERE message_id = $1 RETURNING attempts""",
            key,
            lease_s,
        )
        return Attempt(int(number), state, str(row["last_error"]))


async def record_failure(
    conn: asyncpg.Connection | asyncpg.Pool,
    message_id: str,
    error: str,
    *,
    dead: bool,
    retry_in_s: float = 0.0,
) -> None:
    await conn.execute(
        """UPDATE email_deliveries
           SET state = $2, last_error = $3, next_attempt_at = now() + make_interval(secs => $4)
           WHERE message_id = $1 AND state <> 'sent'""",
        uuid.UUID(message_id),
        DEAD if dead else FAILED,
        error[:2000],
        retry_in_s,
    )


async def record_sent(conn: asyncpg.Connection, message_id: str) -> None:
    """Call in the transaction that claims the message as processed."""
    await conn.execute(
        "UPDATE email_deliveries SET state = 'sent', sent_at = now() WHERE message_id = $1",
        uuid.UUID(message_id),
    )


async def due_deliveries(conn: asyncpg.Connection | asyncpg.Pool, limit: int) -> list[Any]:
    """The stored notifications (envelope bodies) whose next try is due, earliest first."""
    rows = await conn.fetch(
        """SELECT envelope FROM email_deliveries
           WHERE state IN ('new', 'sending', 'failed') AND next_attempt_at <= now()
           ORDER BY next_attempt_at LIMIT $1""",
        limit,
    )
    return [row["envelope"] for row in rows]
