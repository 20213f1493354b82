-- Payments, the provider events that settle them, and the post-payment sagas.

CREATE TABLE payments (
    payment_id          uuid PRIMARY KEY,
    booking_id          uuid NOT NULL REFERENCES bookings (booking_id),
    user_id             uuid NOT NULL REFERENCES users (user_id),
    amount_minor        bigint NOT NULL CHECK (amount_minor >= 0),
    currency            text NOT NULL,
    provider            text NOT NULL,
    provider_ref        text,
    status              text NOT NULL
        CHECK (status IN ('PENDING', 'SUCCEEDED', 'FAILED', 'REFUNDED')),
    test_outcome        text,
    idempotency_key     text NOT NULL,
    request_fingerprint text NOT NULL,
    first_response      jsonb NOT NULL,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    CONSTRAINT payments_one_per_idempotency_key UNIQUE (user_id, idempotency_key)
);
-- At most one payment per booking may be running or have taken the money: a second one could
-- only be refunded. A FAILED (or REFUNDED) payment frees the booking for another attempt.
CREATE UNIQUE INDEX payments_one_live_per_booking ON payments (booking_id)
    WHERE status IN ('PENDING', 'SUCCEEDED');
CREATE INDEX payments_pending ON payments (created_at) WHERE status = 'PENDING';

-- Every provider event received, once: the primary key makes a second delivery a no-op.
CREATE TABLE payment_events (
    provider    text NOT NULL,
    event_id    text NOT NULL,
    payment_id  uuid,
    type        text NOT NULL,
    payload     jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, event_id)
);

-- One saga per payment (kind 'payment') or per refund of a confirmed booking (kind 'cancel').
CREATE TABLE sagas (
    saga_id     uuid PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('payment', 'cancel')),
    payment_id  uuid NOT NULL REFERENCES payments (payment_id),
    booking_id  uuid NOT NULL REFERENCES bookings (booking_id),
    event_id    uuid NOT NULL,
    state       text NOT NULL,
    step        text,
    attempts    int NOT NULL DEFAULT 0,
    last_error  text,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE UNIQUE INDEX sagas_one_cancel_per_booking ON sagas (booking_id) WHERE kind = 'cancel';
CREATE INDEX sagas_running ON sagas (updated_at)
    WHERE state NOT IN ('COMPLETED', 'COMPENSATED', 'FAILED');

-- The outcome of each step, in order (the audit trail of a saga).
CREATE TABLE saga_steps (
    id          bigserial PRIMARY KEY,
    saga_id     uuid NOT NULL REFERENCES sagas (saga_id),
    step        text NOT NULL,
    outcome     text NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX saga_steps_saga ON saga_steps (saga_id, id);

-- Wakes the outbox relay as soon as a transaction with outbox rows commits (NOTIFY is
-- delivered at commit), instead of waiting for its next idle tick.
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox', '');
    RETURN NULL;
END;
$$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
