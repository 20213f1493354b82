"""The notifier's ledger of email attempts (`email_deliveries`, migration 0010)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

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


async def begin_attempt(
    conn: asyncpg.Connection, message_id: str, *, kind: str, recipient: str
) -> Attempt:
    """Counts one more attempt and marks it `sending` (committed on return: call holding
    `lock_delivery`, before sending), unless the email was already sent or given up on: then
    nothing changes and the returned number is 0."""
    key = uuid.UUID(message_id)
    async with conn.transaction():
        await conn.execute(
            """INSERT INTO email_deliveries (message_id, kind, recipient) VALUES ($1, $2, $3)
               ON CONFLICT DO NOTHING""",
            key,
            kind,
            recipient,
        )
        row = await conn.fetchrow(
            """SELECT state, attempts, coalesce(last_error, '') AS last_error
               FROM email_deliveries WHERE message_id = $1 FOR UPDATE""",
            key,
        )
        assert row is not None
        state = str(row["state"])
        if state in (SENT, DEAD):
            return Attempt(0, state, str(row["last_error"]))
        number = await conn.fetchval(
            """UPDATE email_deliveries
               SET state = 'sending', attempts = attempts + 1, last_attempt_at = now()
               WHERE message_id = $1 RETURNING attempts""",
            key,
        )
        return Attempt(int(number), state, str(row["last_error"]))


async def record_failure(
    conn: asyncpg.Connection | asyncpg.Pool, message_id: str, error: str, *, dead: bool
) -> None:
    await conn.execute(
        """UPDATE email_deliveries SET state = $2, last_error = $3
           WHERE message_id = $1 AND state <> 'sent'""",
        uuid.UUID(message_id),
        DEAD if dead else FAILED,
        error[:2000],
    )


async def record_sent(conn: asyncpg.Connection, message_id: str) -> None:
    """Call in the transaction that claims the message as processed."""
    await conn.execute(
        """UPDATE email_deliveries SET state = 'sent', sent_at = now()
           WHERE message_id = $1""",
        uuid.UUID(message_id),
    )
