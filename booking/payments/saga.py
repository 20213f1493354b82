"""The payment saga's vocabulary, shared by the payment intake and the saga workers: its steps
(each a command saga-step executes), the state waiting on each, its end states, its topics, and
`advance_saga`, the one way a saga moves on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from booking.messaging import (
    TOPIC_BOOKINGS,
    TOPIC_NOTIFICATIONS,
    TOPIC_PAYMENTS,
    TOPIC_SAGA,
    TOPIC_SAGA_REPLIES,
    Envelope,
    add_to_outbox,
)
from booking.payments import saga_store
from booking.payments.saga_store import Saga

# Saga steps (each a command the saga-step worker executes) and the state waiting on each.
STEP_CONFIRM = "confirm_booking"
STEP_NOTIFY = "notify"
STEP_REFUND = "refund_payment"
STEP_RELEASE = "release_booking"
STATE_OF_STEP = {
    STEP_CONFIRM: "CONFIRMING",
    STEP_NOTIFY: "NOTIFYING",
    STEP_REFUND: "REFUNDING",
    STEP_RELEASE: "RELEASING",
}
COMPLETED = "COMPLETED"
COMPENSATED = "COMPENSATED"
SAGA_FAILED = "FAILED"


@dataclass(frozen=True)
class SagaTopics:
    """Topic names (tests isolate themselves with a suffix)."""

    payments: str = TOPIC_PAYMENTS
    commands: str = TOPIC_SAGA
    replies: str = TOPIC_SAGA_REPLIES
    bookings: str = TOPIC_BOOKINGS
    notifications: str = TOPIC_NOTIFICATIONS

    @classmethod
    def for_namespace(cls, namespace: str) -> SagaTopics:
        """KAFKA_NAMESPACE: deployments sharing a broker keep to their own topics."""
        return cls.with_suffix(namespace) if namespace else cls()

    @classmethod
    def with_suffix(cls, suffix: str) -> SagaTopics:
        base = cls()
        return cls(
            payments=f"{base.payments}.{suffix}",
            commands=f"{base.commands}.{suffix}",
            replies=f"{base.replies}.{suffix}",
            bookings=f"{base.bookings}.{suffix}",
            notifications=f"{base.notifications}.{suffix}",
        )


async def advance_saga(
    conn: asyncpg.Connection,
    saga: Saga,
    *,
    step: str | None,
    state: str | None = None,
    now: datetime,
    topics: SagaTopics,
    retry: bool = False,
    last_error: str | None = None,
) -> None:
    """Moves the saga on and, when there is a next step, sends its command (outbox, same
    transaction). A retry sends the current step's command again with a fresh message id."""
    state = state or STATE_OF_STEP[step or ""]
    await saga_store.update_saga(
        conn,
        saga.saga_id,
        state=state,
        step=step,
        now=now,
        last_error=last_error,
        new_attempt=retry,
    )
    if step is None:
        return
    command = {
        "saga_id": saga.saga_id,
        "kind": saga.kind,
        "step": step,
        "payment_id": saga.payment_id,
        "booking_id": saga.booking_id,
        "event_id": saga.event_id,
        "release_reason": "REFUNDED" if saga.kind == "cancel" else "FAILED",
        "attempt": saga.attempts + 1 if retry else 0,
    }
    envelope = Envelope.new(f"saga.{step}", saga.booking_id, command, now)
    await add_to_outbox(conn, topics.commands, envelope)
