-- The virtual queue: each event's pre-queue seed. It is drawn here, when the row is created, from
-- PostgreSQL's strong random source (gen_random_uuid: 2 x 122 random bits), so the seed is fixed
-- before anyone can join; GET /events shows sha256(seed) before the sale and the seed after.
ALTER TABLE events
    ADD COLUMN queue_seed bytea NOT NULL
        DEFAULT decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex');
