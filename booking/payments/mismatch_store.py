"""Provider successes refused because they were not for the payment's own PaymentIntent, amount
or currency (`payment_mismatches`, migration 0008), and the refund of the money they name."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from booking.store import Conn

PENDING = "pending"
REFUNDED = "refunded"
NOTHING_TO_REFUND = "nothing_to_refund"
REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class Mismatch:
    mismatch_id: int
    payment_id: str
    provider: str
    provider_ref: str | None
    amount_minor: int | None
    currency: str | None
    reasons: list[str]
    attempts: int


def _mismatch(row: asyncpg.Record) -> Mismatch:
    return Mismatch(
        mismatch_id=row["id"],
        payment_id=str(row["payment_id"]),
        provider=row["provider"],
        provider_ref=row["provider_ref"],
        amount_minor=row["amount_minor"],
        currency=row["currency"],
        reasons=list(row["reasons"]),
        attempts=row["attempts"],
    )


async def record_mismatch(
    conn: Conn,
    *,
    payment_id: str,
    provider: str,
    source: str,
    provider_ref: str | None,
    amount_minor: int | None,
    currency: str | None,
    reasons: Sequence[str],
) -> bool:
    """True for the first report of money on this PaymentIntent; False when it is on record."""
    inserted = await conn.fetchval(
        """INSERT INTO payment_mismatches (payment_id, provider, source, provider_ref,
               amount_minor, currency, reasons, refund_status)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           ON CONFLICT DO NOTHING RETURNING true""",
        uuid.UUID(payment_id),
        provider,
        source,
        provider_ref,
        amount_minor,
        currency,
        list(reasons),
        # No PaymentIntent named: there is no money at the provider this could point to.
        PENDING if provider_ref else NOTHING_TO_REFUND,
    )
    return bool(inserted)


async def lease_due(conn: Conn, *, provider: str, lease_s: float, limit: int) -> list[Mismatch]:
    """Mismatches whose money is still to be dealt with, leased for `lease_s` (other
    orchestrator copies skip them; a copy that dies gives them back when the lease ends)."""
    rows = await conn.fetch(
        """UPDATE payment_mismatches SET attempts = attempts + 1,
               next_attempt_at = now() + make_interval(secs => $2), updated_at = now()
           WHERE id IN (SELECT id FROM payment_mismatches
                        WHERE refund_status = 'pending' AND provider = $1
                          AND next_attempt_at <= now()
                        ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED)
           RETURNING *""",
        provider,
        lease_s,
        limit,
    )
    return [_mismatch(row) for row in rows]


async def settle_mismatch(
    conn: Conn,
    mismatch_id: int,
    status: str,
    *,
    refund_ref: str | None = None,
    note: str | None = None,
) -> None:
    await conn.execute(
        """UPDATE payment_mismatches SET refund_status = $2, refund_ref = $3, last_error = $4,
               updated_at = now()
           WHERE id = $1""",
        mismatch_id,
        status,
        refund_ref,
        note,
    )


async def try_again_later(conn: Conn, mismatch_id: int, *, delay_s: float, note: str) -> None:
    await conn.execute(
        """UPDATE payment_mismatches SET next_attempt_at = now() + make_interval(secs => $2),
               last_error = $3, updated_at = now()
           WHERE id = $1""",
        mismatch_id,
        delay_s,
        note,
    )
