-- Catalog (events, zones, seats) and bookings. The constraints here are the last line against an
-- oversell: even if Redis were wrong, PostgreSQL refuses to commit one.

CREATE TABLE events (
    event_id               uuid PRIMARY KEY,
    organizer_id           uuid NOT NULL REFERENCES users (user_id),
    name                   text NOT NULL,
    venue                  text NOT NULL,
    starts_at              timestamptz NOT NULL,
    sale_starts_at         timestamptz NOT NULL,
    max_per_user           int NOT NULL CHECK (max_per_user BETWEEN 1 AND 100),
    currency               text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    status                 text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'on_sale', 'closed')),
    queue_enabled          boolean NOT NULL DEFAULT false,
    queue_max_concurrent   int NOT NULL DEFAULT 100 CHECK (queue_max_concurrent >= 1),
    queue_release_per_tick int NOT NULL DEFAULT 50 CHECK (queue_release_per_tick >= 1),
    queue_pass_ttl_s       int NOT NULL DEFAULT 120 CHECK (queue_pass_ttl_s >= 5),
    queue_paused           boolean NOT NULL DEFAULT false,
    created_at             timestamptz NOT NULL DEFAULT now(),
    published_at           timestamptz
);
CREATE INDEX events_listing ON events (status, sale_starts_at);

CREATE TABLE zones (
    zone_id     uuid PRIMARY KEY,
    event_id    uuid NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
    position    int NOT NULL,
    name        text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('ga', 'seated')),
    capacity    int NOT NULL CHECK (capacity > 0),
    price_minor bigint NOT NULL CHECK (price_minor >= 0),
    held        int NOT NULL DEFAULT 0,
    sold        int NOT NULL DEFAULT 0,
    suspended   int NOT NULL DEFAULT 0,
    CONSTRAINT zones_no_oversell
        CHECK (held >= 0 AND sold >= 0 AND suspended >= 0 AND held + sold + suspended <= capacity),
    UNIQUE (event_id, position)
);
CREATE INDEX zones_event ON zones (event_id);

CREATE TABLE seats (
    zone_id   uuid NOT NULL REFERENCES zones (zone_id) ON DELETE CASCADE,
    label     text NOT NULL,
    position  int NOT NULL,
    suspended boolean NOT NULL DEFAULT false,
    PRIMARY KEY (zone_id, label)
);

CREATE TABLE bookings (
    booking_id          uuid PRIMARY KEY,
    event_id            uuid NOT NULL REFERENCES events (event_id),
    zone_id             uuid NOT NULL REFERENCES zones (zone_id),
    user_id             uuid NOT NULL REFERENCES users (user_id),
    quantity            int NOT NULL CHECK (quantity > 0),
    seats               text[],
    status              text NOT NULL
        CHECK (status IN ('RESERVED', 'CONFIRMED', 'CANCELLED', 'EXPIRED', 'REFUNDED')),
    amount_minor        bigint NOT NULL CHECK (amount_minor >= 0),
    currency            text NOT NULL,
    idempotency_key     text NOT NULL,
    request_fingerprint text NOT NULL,
    created_at          timestamptz NOT NULL,
    expires_at          timestamptz NOT NULL,
    confirmed_at        timestamptz,
    ended_at            timestamptz,
    payment_id          uuid,
    CONSTRAINT bookings_one_per_idempotency_key UNIQUE (user_id, idempotency_key)
);
CREATE INDEX bookings_mine ON bookings (user_id, created_at DESC);
CREATE INDEX bookings_due ON bookings (expires_at) WHERE status = 'RESERVED';
CREATE INDEX bookings_event ON bookings (event_id, status);

-- One row per seat a booking takes; `live` while the booking is RESERVED or CONFIRMED.
CREATE TABLE booking_seats (
    booking_id uuid NOT NULL REFERENCES bookings (booking_id) ON DELETE CASCADE,
    zone_id    uuid NOT NULL,
    label      text NOT NULL,
    live       boolean NOT NULL DEFAULT true,
    PRIMARY KEY (booking_id, label),
    FOREIGN KEY (zone_id, label) REFERENCES seats (zone_id, label)
);
CREATE UNIQUE INDEX booking_seats_one_live_booking ON booking_seats (zone_id, label) WHERE live;

-- Tickets a user holds or bought per event, capped by the event's limit at the time of writing.
CREATE TABLE user_tickets (
    event_id    uuid NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
    user_id     uuid NOT NULL REFERENCES users (user_id),
    tickets     int NOT NULL DEFAULT 0,
    max_tickets int NOT NULL,
    PRIMARY KEY (event_id, user_id),
    CONSTRAINT user_tickets_within_limit CHECK (tickets >= 0 AND tickets <= max_tickets)
);
