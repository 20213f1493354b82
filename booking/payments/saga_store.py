"""Saga state and the outcome of each step, in PostgreSQL."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from booking.store import Conn

TERMINAL_STATES = ("COMPLETED", "COMPENSATED", "FAILED")


@dataclass(frozen=True, slots=True)
class Saga:
    saga_id: str
    kind: str  # payment | cancel
    payment_id: str
    booking_id: str
    event_id: str
    state: str
    step: str | None
    attempts: int
    last_error: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL_STATES

    @classmethod
    def begin(
        cls,
        *,
        saga_id: str,
        kind: str,
        payment_id: str,
        booking_id: str,
        event_id: str,
        step: str,
        state: str,
        now: datetime,
    ) -> Saga:
        """A new saga about to run its first step."""
        return cls(
            saga_id=saga_id,
            kind=kind,
            payment_id=payment_id,
            booking_id=booking_id,
            event_id=event_id,
            state=state,
            step=step,
            attempts=0,
            last_error=None,
            created_at=now,
            updated_at=now,
        )


def _saga(row: asyncpg.Record) -> Saga:
    return Saga(
        saga_id=str(row["saga_id"]),
        kind=row["kind"],
        payment_id=str(row["payment_id"]),
        booking_id=str(row["booking_id"]),
        event_id=str(row["event_id"]),
        state=row["state"],
        step=row["step"],
        attempts=row["attempts"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def insert_saga(conn: Conn, saga: Saga) -> bool:
    """False when the saga (or the booking's cancel saga) already exists."""
    inserted = await conn.fetchval(
        """INSERT INTO sagas (saga_id, kind, payment_id, booking_id, event_id, state, step,
               created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
           ON CONFLICT DO NOTHING RETURNING true""",
        uuid.UUID(saga.saga_id),
        saga.kind,
        uuid.UUID(saga.payment_id),
        uuid.UUID(saga.booking_id),
        uuid.UUID(saga.event_id),
        saga.state,
        saga.step,
        saga.created_at,
    )
    return bool(inserted)


async def find_saga(conn: Conn, saga_id: str, *, lock: bool = False) -> Saga | None:
    suffix = " FOR UPDATE" if lock else ""
    row = await conn.fetchrow(f"SELECT * FROM sagas WHERE saga_id = $1{suffix}", uuid.UUID(saga_id))
    return None if row is None else _saga(row)


async def update_saga(
    conn: Conn,
    saga_id: str,
    *,
    state: str,
    step: str | None,
    now: datetime,
    last_error: str | None = None,
    new_attempt: bool = False,
) -> None:
    await conn.execute(
        """UPDATE sagas SET state = $2, step = $3, updated_at = $4,
               last_error = coalesce($5, last_error),
               attempts = CASE WHEN $6 THEN attempts + 1 ELSE 0 END
           WHERE saga_id = $1""",
        uuid.UUID(saga_id),
        state,
        step,
        now,
        last_error,
        new_attempt,
    )


async def record_step(
    conn: Conn, saga_id: str, step: str, outcome: str, detail: dict[str, Any] | None = None
) -> None:
    await conn.execute(
        "INSERT INTO saga_steps (saga_id, step, outcome, detail) VALUES ($1, $2, $3, $4)",
        uuid.UUID(saga_id),
        step,
        outcome,
        detail or {},
    )


async def claim_stuck_sagas(
    conn: asyncpg.Connection, *, now: datetime, timeout_s: float, backoff_cap: int, limit: int
) -> list[Saga]:
    """Running sagas due for another try, locked for this transaction (other orchestrator
    copies skip them). The first tries come `timeout_s` apart (a lost message is re-sent
    promptly), then the pause grows by `timeout_s` a try up to `backoff_cap` x `timeout_s`."""
    rows = await conn.fetch(
        """SELECT * FROM sagas
           WHERE state NOT IN ('COMPLETED', 'COMPENSATED', 'FAILED')
             AND updated_at < $1::timestamptz
                 - make_interval(secs => $2::float8 * least(greatest(attempts - 1, 1), $3::int))
           ORDER BY updated_at LIMIT $4 FOR UPDATE SKIP LOCKED""",
        now,
        timeout_s,
        backoff_cap,
        limit,
    )
    return [_saga(row) for row in rows]
