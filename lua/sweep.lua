--[[ sweep: release up to `limit` holds whose deadline has passed (status EXPIRED).

KEYS (every script, booking.inventory.keys.SCRIPT_KEYS order):
  1 meta  2 inv  3 seats  4 holds  5 expiry  6 users  7 idem  8 pending  9 passes
  10 passes_active  11 feed (pub/sub channel)  12 waitlist  13 wl_entries  14 wl_waiting
  15 offers  16 offers_expiry  17 withheld
ARGV:
  1 now_ms    holds with deadline_ms <= now_ms are due
  2 limit     at most this many holds per call (bounds the time the script blocks Redis)
  3 now_iso   RFC 3339 timestamp for the feed messages
Returns:
  {1, more (0|1), booking_id_1, hold_json_1, was_pending_1, booking_id_2, ...}
  more = 1 when due holds remain after this batch (call again).
  was_pending = 1 when the hold had never been made durable in PostgreSQL (the service
  crashed between the Redis hold and its commit): the worker must not expect the row.
Errors: none.
Several workers may sweep at once: each call is atomic and removes what it releases from the
expiry index, so no hold is released twice. An index entry whose hold is missing or no longer
RESERVED is dropped without other effect.
Effects per hold: as release.lua with reason EXPIRED (seats free, held -> available, user count
down, out of `pending`); PUBLISH SEAT_AVAILABLE.
]]
--@include _event_keys
--@include _withhold
--@include _give_back

local now, limit, now_iso = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]

local due = redis.call('ZRANGEBYSCORE', EXPIRY, '-inf', now, 'LIMIT', 0, limit)
local result = {1, 0}
if #due == 0 then
  return result
end
local event_id = redis.call('HGET', META, 'event_id')

for _, booking_id in ipairs(due) do
  redis.call('ZREM', EXPIRY, booking_id)
  local raw = redis.call('HGET', HOLDS, booking_id)
  local hold = raw and cjson.decode(raw)
  if hold and hold.status == 'RESERVED' then
    local available, was_pending, hold_json, withheld =
      give_back(booking_id, hold, 'held', 'EXPIRED', now)
    publish_seat_update(event_id, booking_id, hold,
      withheld and 'SEAT_WITHHELD' or 'SEAT_AVAILABLE', available, now_iso)

    result[#result + 1] = booking_id
    result[#result + 1] = hold_json
    result[#result + 1] = was_pending
  end
end

if #redis.call('ZRANGEBYSCORE', EXPIRY, '-inf', now, 'LIMIT', 0, 1) > 0 then
  result[2] = 1
end
return result
