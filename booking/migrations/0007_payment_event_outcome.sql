-- The outcome each provider event meant (succeeded, failed, refunded, ignored), so the
-- orchestrator can re-drive a recorded outcome whose message was lost without re-parsing.
ALTER TABLE payment_events ADD COLUMN outcome text;
