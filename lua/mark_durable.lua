--[[ mark_durable: holds PostgreSQL has committed leave `pending` (booking/hold_writer.py, after
each batch; one call per event of the batch).

KEYS (every script, booking.inventory.keys.SCRIPT_KEYS order):
  1 meta  2 inv  3 seats  4 holds  5 expiry  6 users  7 idem  8 pending  9 passes
  10 passes_active  11 feed (pub/sub channel)  12 waitlist  13 wl_entries  14 wl_waiting
  15 offers  16 offers_expiry  17 withheld
ARGV:
  1..n booking ids
Returns: how many were pending.
Errors: none (an id no longer pending, or never, changes nothing).
Why a script for one HDEL: it runs over the same lean wire as every other script of the event
(common/script_wire.py) instead of a redis-py pipeline, which was 6.6 % of the booking
service's CPU per reserve (py-spy, make bench phase a).
]]
--@include _event_keys

return redis.call('HDEL', PENDING, unpack(ARGV))
