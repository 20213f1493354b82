-- When the provider accepted the payment (its PaymentIntent id stored): an unanswered payment is
-- cancelled SAGA_TIMEOUT_S after this, not after it was first tried (a provider outage may lie
-- in between, and the buyer may retry with the same Idempotency-Key).
ALTER TABLE payments ADD COLUMN opened_at timestamptz;
-- Payments opened before: as if opened when created (the rule they were made under).
UPDATE payments SET opened_at = created_at WHERE provider_ref IS NOT NULL;

-- Provider successes that were not for the payment's own PaymentIntent, amount or currency:
-- never a confirmation. One row per PaymentIntent the money arrived on (however often it was
-- reported, by webhook or by asking the provider), and what happened to that money: refunded at
-- the provider, or nothing to refund (the provider holds no such money, or it is the payment's
-- own correct charge after all).
CREATE TABLE payment_mismatches (
    id              bigserial PRIMARY KEY,
    payment_id      uuid NOT NULL REFERENCES payments (payment_id),
    provider        text NOT NULL,
    source          text NOT NULL,  -- the webhook's event id, or 'provider' (asked in recovery)
    provider_ref    text,           -- the PaymentIntent it names (NULL: it named none)
    amount_minor    bigint,         -- what it said arrived
    currency        text,
    reasons         text[] NOT NULL,
    refund_status   text NOT NULL DEFAULT 'pending'
        CHECK (refund_status IN ('pending', 'refunded', 'nothing_to_refund', 'refused')),
    refund_ref      text,
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX payment_mismatches_one_per_intent ON payment_mismatches (provider, provider_ref)
    WHERE provider_ref IS NOT NULL;
CREATE INDEX payment_mismatches_to_refund ON payment_mismatches (next_attempt_at)
    WHERE refund_status = 'pending';
CREATE INDEX payment_mismatches_payment ON payment_mismatches (payment_id);
