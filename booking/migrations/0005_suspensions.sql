-- Seats taken out of sale by operators. The current state lives where 0002 put it
-- (seats.suspended per seat, zones.suspended per zone, counted by zones_no_oversell as neither
-- available nor sold); this table is the history: who suspended or released what, and why.
CREATE TABLE seat_suspensions (
    suspension_id bigserial PRIMARY KEY,
    event_id      uuid NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
    zone_id       uuid NOT NULL REFERENCES zones (zone_id) ON DELETE CASCADE,
    action        text NOT NULL CHECK (action IN ('suspend', 'unsuspend')),
    seats         text[],
    quantity      int NOT NULL CHECK (quantity > 0),
    reason        text NOT NULL DEFAULT '',
    admin_id      uuid NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX seat_suspensions_event ON seat_suspensions (event_id, created_at);
