-- Tickets: one row per seat (seated zone) or unit (general admission) of a confirmed booking,
-- written in the transaction that confirms it and voided in the one that refunds it. `code` is
-- the signed text handed to the buyer (booking/tickets/codes.py); it verifies without this table,
-- the table decides whether it still admits someone.
CREATE TABLE tickets (
    ticket_id     uuid PRIMARY KEY,
    booking_id    uuid NOT NULL REFERENCES bookings (booking_id) ON DELETE CASCADE,
    event_id      uuid NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
    zone_id       uuid NOT NULL REFERENCES zones (zone_id) ON DELETE CASCADE,
    unit          int NOT NULL CHECK (unit BETWEEN 1 AND 65535),  -- 1..quantity within the booking
    seat_id       text,  -- the seat's label; NULL in a general-admission zone
    code          text NOT NULL,
    status        text NOT NULL DEFAULT 'valid' CHECK (status IN ('valid', 'void')),
    issued_at     timestamptz NOT NULL,
    voided_at     timestamptz,
    checked_in_at timestamptz,
    checked_in_by uuid,
    -- A confirm replayed (a redelivered saga command, a read that issues what is missing) can
    -- never give one seat two tickets.
    CONSTRAINT tickets_one_per_unit UNIQUE (booking_id, unit),
    CONSTRAINT tickets_checked_in_by_someone
        CHECK ((checked_in_at IS NULL) = (checked_in_by IS NULL)),
    CONSTRAINT tickets_void_when CHECK ((status = 'void') = (voided_at IS NOT NULL))
);
CREATE INDEX tickets_event ON tickets (event_id, status);

-- Door staff: may check tickets in at any event, nothing else.
ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check
    CHECK (role IN ('customer', 'organizer', 'admin', 'staff'));
