-- The mock payment provider's own books: what a real provider keeps on its side. It lives in
-- our database only for convenience (the mock has no server of its own); nothing of the
-- booking engine reads it except through the provider interface (and the chaos auditor, which
-- plays the role of the provider's dashboard).
--
-- status: processing (no answer yet), succeeded (money taken), failed (declined),
-- canceled (we cancelled it before it settled: it can never take money afterwards).
CREATE TABLE mock_charges (
    payment_id   uuid PRIMARY KEY,
    provider_ref text NOT NULL UNIQUE,
    amount_minor bigint NOT NULL,
    currency     text NOT NULL,
    status       text NOT NULL
        CHECK (status IN ('processing', 'succeeded', 'failed', 'canceled')),
    refund_ref   text,
    refunded_at  timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Webhooks the mock owes us, delivered (by whichever booking process runs the mock's sender)
-- until one answers 2xx, with backoff, the way Stripe retries: a crash of the sender loses none.
CREATE TABLE mock_webhooks (
    id              bigserial PRIMARY KEY,
    payment_id      uuid NOT NULL,
    body            text NOT NULL,
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    delivered_at    timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mock_webhooks_due ON mock_webhooks (next_attempt_at) WHERE delivered_at IS NULL;
