-- The waitlist of a sold-out event (booking/waitlist/). PostgreSQL is its truth: a join is
-- answered 202 only once its entry is here; Redis holds the live line and the offers, and a
-- rebuild restores both from these tables.
ALTER TABLE events
    ADD COLUMN waitlist_enabled boolean NOT NULL DEFAULT true,
    ADD COLUMN waitlist_offer_ttl_s int NOT NULL DEFAULT 300
        CHECK (waitlist_offer_ttl_s BETWEEN 30 AND 86400);

CREATE TABLE waitlist_entries (
    entry_id   uuid PRIMARY KEY,
    event_id   uuid NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES users (user_id),
    zone_id    uuid REFERENCES zones (zone_id) ON DELETE CASCADE,  -- NULL: any zone
    quantity   int NOT NULL CHECK (quantity > 0),
    -- join order (one sequence for every event: only the order within an event matters)
    position   bigint GENERATED ALWAYS AS IDENTITY,
    status     text NOT NULL DEFAULT 'WAITING'
        CHECK (status IN ('WAITING', 'OFFERED', 'TAKEN', 'LAPSED', 'LEFT')),
    joined_at  timestamptz NOT NULL DEFAULT now(),
    ended_at   timestamptz
);
-- one live entry per user and event (a user may join again once an entry ended)
CREATE UNIQUE INDEX waitlist_one_live_entry ON waitlist_entries (event_id, user_id)
    WHERE status IN ('WAITING', 'OFFERED');
CREATE INDEX waitlist_live_by_event ON waitlist_entries (event_id, position)
    WHERE status IN ('WAITING', 'OFFERED');

CREATE TABLE waitlist_offers (
    offer_id   uuid PRIMARY KEY,
    entry_id   uuid NOT NULL REFERENCES waitlist_entries (entry_id) ON DELETE CASCADE,
    event_id   uuid NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
    user_id    uuid NOT NULL,
    zone_id    uuid NOT NULL REFERENCES zones (zone_id) ON DELETE CASCADE,
    quantity   int NOT NULL CHECK (quantity > 0),
    seats      text[],
    status     text NOT NULL DEFAULT 'OUTSTANDING'
        CHECK (status IN ('OUTSTANDING', 'TAKEN', 'LAPSED', 'WITHDRAWN')),
    booking_id uuid,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    ended_at   timestamptz
);
CREATE INDEX waitlist_offers_outstanding ON waitlist_offers (event_id) WHERE status = 'OUTSTANDING';
