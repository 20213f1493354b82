--[[ release: give a booking's seats back to the sale (cancel, payment failure, expiry, refund).

KEYS (every script, booking.inventory.keys.SCRIPT_KEYS order):
  1 meta  2 inv  3 seats  4 holds  5 expiry  6 users  7 idem  8 pending  9 passes
  10 passes_active  11 feed (pub/sub channel)  12 waitlist  13 wl_entries  14 wl_waiting
  15 offers  16 offers_expiry  17 withheld
ARGV:
  1 booking_id
  2 reason           CANCELLED | EXPIRED | FAILED | REFUNDED
                     final status = reason, except FAILED (payment failed) -> CANCELLED
  3 allow_confirmed  "1": a CONFIRMED booking may be released too (refund of a confirmed
                     booking: its sold seats go back on sale); "0": CONFIRMED -> INVALID_STATE
  4 now_ms
  5 now_iso          RFC 3339 timestamp for the feed messages
Returns:
  {1, changed (0|1), hold_json}
  changed = 0: the booking was already CANCELLED / EXPIRED / REFUNDED; nothing is touched
  (so a second call is a harmless no-op returning the current record).
Errors:
  NOT_FOUND        unknown booking
  INVALID_STATE    CONFIRMED without allow_confirmed; EXPIRED asked for a CONFIRMED booking or
                   for a hold whose deadline has not passed yet
  INVALID_REASON   reason not one of the four above
Effects: seats -> free ("" in `seats` when still owned by this booking), held (or sold) ->
  available in zone + totals, user count decremented, removed from the expiry index and from
  `pending`, record status + ended_ms. PUBLISH SEAT_CANCELLED then SEAT_AVAILABLE (an expiry
  publishes only SEAT_AVAILABLE). When the event's waitlist has someone waiting for the zone
  the seats are withheld instead of put on sale (lua/_withhold.lua) and SEAT_WITHHELD replaces
  SEAT_AVAILABLE.
  Idempotency: a durable booking keeps its `idem` entry (a retry answers this record); a hold
  still in `pending` was never acknowledged (e.g. its PostgreSQL write failed), so its `idem`
  entry is dropped and a retry with the same key reserves afresh, and the queue pass it
  consumed is put back (unless expired) so the buyer's next try can use it.
]]
--@include _event_keys
--@include _withhold
--@include _give_back

local booking_id, reason, allow_confirmed = ARGV[1], ARGV[2], ARGV[3] == '1'
local now, now_iso = tonumber(ARGV[4]), ARGV[5]

local final_status = ({
  CANCELLED = 'CANCELLED', EXPIRED = 'EXPIRED', FAILED = 'CANCELLED', REFUNDED = 'REFUNDED',
})[reason]
if not final_status then
  return {0, 'INVALID_REASON'}
end

local raw = redis.call('HGET', HOLDS, booking_id)
if not raw then
  return {0, 'NOT_FOUND'}
end
local hold = cjson.decode(raw)
local status = hold.status
if status == 'CANCELLED' or status == 'EXPIRED' or status == 'REFUNDED' then
  return {1, 0, raw}
end

local counter
if status == 'CONFIRMED' then
  if not allow_confirmed or final_status == 'EXPIRED' then
    return {0, 'INVALID_STATE'}
  end
  counter = 'sold'
elseif status == 'RESERVED' then
  if final_status == 'EXPIRED' and now < hold.deadline_ms then
    return {0, 'INVALID_STATE'}
  end
  counter = 'held'
else
  return {0, 'INVALID_STATE'}
end

redis.call('ZREM', EXPIRY, booking_id)
local available, _, hold_json, withheld = give_back(booking_id, hold, counter, final_status, now)

local event_id = redis.call('HGET', META, 'event_id')
if final_status ~= 'EXPIRED' then
  local before = withheld and available or available - hold.qty
  publish_seat_update(event_id, booking_id, hold, 'SEAT_CANCELLED', before, now_iso)
end
publish_seat_update(event_id, booking_id, hold, withheld and 'SEAT_WITHHELD' or 'SEAT_AVAILABLE',
  available, now_iso)

return {1, 1, hold_json}
