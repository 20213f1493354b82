--[[ confirm: a paid hold becomes a sale (RESERVED -> CONFIRMED, held -> sold).

KEYS (every script, booking.inventory.keys.SCRIPT_KEYS order):
  1 meta  2 inv  3 seats  4 holds  5 expiry  6 users  7 idem  8 pending  9 passes
  10 passes_active  11 feed (pub/sub channel)  12 waitlist  13 wl_entries  14 wl_waiting
  15 offers  16 offers_expiry  17 withheld
ARGV:
  1 booking_id
  2 now_ms
  3 now_iso   RFC 3339 timestamp for the feed message
Returns:
  {1, already (0|1), hold_json}; already = 1 when the booking was CONFIRMED before this call
  (idempotent: duplicated saga messages change nothing).
Errors:
  NOT_FOUND             unknown booking
  RESERVATION_EXPIRED   RESERVED but now_ms > deadline_ms (the sweep will release it), or EXPIRED
  INVALID_STATE         CANCELLED or REFUNDED
  On either error the saga refunds the payment.
Effects: held -> sold in zone + totals, removed from the expiry index and `pending`, record
  status CONFIRMED + confirmed_ms; PUBLISH SEAT_CONFIRMED. Seat owners and the user's count are
  unchanged (they already count this booking). Does not check the sale status: a hold taken
  before the sale closed may still be paid.
]]
--@include _event_keys

local booking_id, now, now_iso = ARGV[1], tonumber(ARGV[2]), ARGV[3]

local raw = redis.call('HGET', HOLDS, booking_id)
if not raw then
  return {0, 'NOT_FOUND'}
end
local hold = cjson.decode(raw)
if hold.status == 'CONFIRMED' then
  return {1, 1, raw}
end
if hold.status == 'EXPIRED' or (hold.status == 'RESERVED' and now > hold.deadline_ms) then
  return {0, 'RESERVATION_EXPIRED'}
end
if hold.status ~= 'RESERVED' then
  return {0, 'INVALID_STATE'}
end

local zone, qty = hold.zone, hold.qty
redis.call('HINCRBY', INV, zone .. ':held', -qty)
redis.call('HINCRBY', INV, zone .. ':sold', qty)
redis.call('HINCRBY', INV, 'total:held', -qty)
redis.call('HINCRBY', INV, 'total:sold', qty)
redis.call('ZREM', EXPIRY, booking_id)
redis.call('HDEL', PENDING, booking_id)

hold.status = 'CONFIRMED'
hold.confirmed_ms = now
local hold_json = cjson.encode(hold)
redis.call('HSET', HOLDS, booking_id, hold_json)

local message = {
  type = 'seat_update', event_id = redis.call('HGET', META, 'event_id'), zone_id = zone,
  event_type = 'SEAT_CONFIRMED', quantity = qty,
  available = tonumber(redis.call('HGET', INV, zone .. ':available')),
  booking_id = booking_id, timestamp = now_iso,
}
if hold.seats then
  message.seats = hold.seats
end
redis.call('PUBLISH', FEED, cjson.encode(message))

return {1, 0, hold_json}
