--[[ sweep: release up to `limit` holds whose deadline has passed (status EXPIRED).

KEYS (every script, booking.inventory.keys.SCRIPT_KEYS order):
  1 meta  2 inv  3 seats  4 holds  5 expiry  6 users  7 idem  8 pending  9 passes
  10 passes_active  11 feed (pub/sub channel)
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
local META = KEYS[1]
local INV = KEYS[2]
local SEATS = KEYS[3]
local HOLDS = KEYS[4]
local EXPIRY = KEYS[5]
local USERS = KEYS[6]
local IDEM = KEYS[7]
local PENDING = KEYS[8]
local PASSES = KEYS[9]
local PASSES_ACTIVE = KEYS[10]
local FEED = KEYS[11]

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
    local zone, qty = hold.zone, hold.qty
    if hold.seats then
      for _, label in ipairs(hold.seats) do
        local field = zone .. ':' .. label
        if redis.call('HGET', SEATS, field) == booking_id then
          redis.call('HSET', SEATS, field, '')
        end
      end
    end
    redis.call('HINCRBY', INV, zone .. ':held', -qty)
    redis.call('HINCRBY', INV, 'total:held', -qty)
    redis.call('HINCRBY', INV, 'total:available', qty)
    local available = redis.call('HINCRBY', INV, zone .. ':available', qty)
    if redis.call('HINCRBY', USERS, hold.user, -qty) <= 0 then
      redis.call('HDEL', USERS, hold.user)
    end
    local was_pending = redis.call('HDEL', PENDING, booking_id)
    if was_pending == 1 and hold.idem ~= '' then
      redis.call('HDEL', IDEM, hold.user .. ':' .. hold.idem)
    end

    hold.status = 'EXPIRED'
    hold.ended_ms = now
    local hold_json = cjson.encode(hold)
    redis.call('HSET', HOLDS, booking_id, hold_json)

    local message = {
      type = 'seat_update', event_id = event_id, zone_id = zone, event_type = 'SEAT_AVAILABLE',
      quantity = qty, available = available, booking_id = booking_id, timestamp = now_iso,
    }
    if hold.seats then
      message.seats = hold.seats
    end
    redis.call('PUBLISH', FEED, cjson.encode(message))

    result[#result + 1] = booking_id
    result[#result + 1] = hold_json
    result[#result + 1] = was_pending
  end
end

if #redis.call('ZRANGEBYSCORE', EXPIRY, '-inf', now, 'LIMIT', 0, 1) > 0 then
  result[2] = 1
end
return result
