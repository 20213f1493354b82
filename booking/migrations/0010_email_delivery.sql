-- Email over SMTP (workers/notifier.py). One row per notification the notifier tried to send,
-- with the notification itself (`envelope`), so a deferred email is retried from here, not by
-- holding up the topic. `state` 'sending' is written (and committed) before each SMTP attempt:
-- a notifier that died between the server's 250 and its own commit is detected when the email
-- is tried again (it is then sent again, with the same Message-ID). `attempts` counts every try,
-- across restarts, so the retries stay bounded. (Two copies never send one email at once: the
-- try holds a session advisory lock on it, which dies with its connection.)
CREATE TABLE email_deliveries (
    message_id      uuid PRIMARY KEY,  -- the notification's envelope id (Message-ID derives from it)
    kind            text NOT NULL,
    recipient       text NOT NULL,
    envelope        jsonb NOT NULL,
    state           text NOT NULL DEFAULT 'new'
        CHECK (state IN ('new', 'sending', 'failed', 'sent', 'dead')),
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_attempt_at timestamptz,
    sent_at         timestamptz
);
CREATE INDEX email_deliveries_due ON email_deliveries (next_attempt_at)
    WHERE state IN ('new', 'sending', 'failed');

-- When the buyer was warned that the hold is about to lapse (seat-release writes the warning
-- and this mark in one transaction, so each hold is warned once).
ALTER TABLE bookings ADD COLUMN expiry_warned_at timestamptz;
