--[[ extend_hold: a buyer started paying; the hold must outlive the payment's settlement.

The money may be taken at once, but the confirm that follows can be delayed by what a drop
survives (a broker restart, a saga worker restarting, Redis coming back): the hold is moved to
`until_ms` so it does not lapse under a paid buyer. A failed or unanswered payment releases it
through the saga, so the extension never keeps seats from sale once the payment is settled.

KEYS (every script, booking.inventory.keys.SCRIPT_KEYS order):
  1 meta  2 inv  3 seats  4 holds  5 expiry  6 users  7 idem  8 pending  9 passes
  10 passes_active  11 feed (pub/sub channel)  12 waitlist  13 wl_entries  14 wl_waiting
  15 offers  16 offers_expiry  17 withheld
ARGV:
  1 booking_id
  2 now_ms
  3 until_ms   the new deadline; an earlier one is never shortened
Returns: {1, deadline_ms}
Errors:
  NOT_FOUND             unknown booking
  RESERVATION_EXPIRED   RESERVED but now_ms > deadline_ms, or EXPIRED
  INVALID_STATE         CONFIRMED, CANCELLED or REFUNDED
Effects: the hold's deadline_ms and its score in the expiry index.
]]
--@include _event_keys

local booking_id, now, until_ms = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])

local raw = redis.call('HGET', HOLDS, booking_id)
if not raw then
  return {0, 'NOT_FOUND'}
end
local hold = cjson.decode(raw)
if hold.status == 'EXPIRED' or (hold.status == 'RESERVED' and now > hold.deadline_ms) then
  return {0, 'RESERVATION_EXPIRED'}
end
if hold.status ~= 'RESERVED' then
  return {0, 'INVALID_STATE'}
end
if until_ms > hold.deadline_ms then
  hold.deadline_ms = until_ms
  redis.call('HSET', HOLDS, booking_id, cjson.encode(hold))
  redis.call('ZADD', EXPIRY, until_ms, booking_id)
end
return {1, hold.deadline_ms}
