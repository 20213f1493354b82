-- Included (`--@include _give_back`, after _event_keys and _withhold) by release.lua and
-- sweep.lua: the one copy of how a live hold's seats come back and how the feed hears of it.

-- Frees the hold's seats (those it still owns), moves qty from `counter` (held | sold) back
-- (`put_back`: on sale, or withheld for the waitlist), drops the user's count, forgets an
-- unacknowledged hold's idempotency entry and gives back the queue pass it consumed (unless
-- that pass has expired meanwhile: the buyer was never told the hold existed, so the pass must
-- work for their next try, as a refused reserve keeps it), and stores the record with its
-- final status.
-- Returns the zone's available count, whether the hold was still pending (never
-- acknowledged), the stored JSON, and whether the seats were withheld.
local function give_back(booking_id, hold, counter, final_status, now)
  local zone, qty = hold.zone, hold.qty
  local owned = nil
  if hold.seats then
    owned = {}
    for _, label in ipairs(hold.seats) do
      if redis.call('HGET', SEATS, zone .. ':' .. label) == booking_id then
        owned[#owned + 1] = label
      end
    end
  end
  redis.call('HINCRBY', INV, zone .. ':' .. counter, -qty)
  redis.call('HINCRBY', INV, 'total:' .. counter, -qty)
  local available, withheld = put_back(zone, qty, owned)
  if redis.call('HINCRBY', USERS, hold.user, -qty) <= 0 then
    redis.call('HDEL', USERS, hold.user)
  end
  local was_pending = redis.call('HDEL', PENDING, booking_id)
  if was_pending == 1 and hold.idem ~= '' then
    -- never acknowledged (not durable): a retry with the same key must start afresh
    redis.call('HDEL', IDEM, hold.user .. ':' .. hold.idem)
  end
  if was_pending == 1 and hold.pass then
    local sep = string.find(hold.pass, '|', 1, true)
    local expires = tonumber(string.sub(hold.pass, sep + 1))
    if expires > now then
      redis.call('HSET', PASSES, hold.pass_id, hold.pass)
      redis.call('ZADD', PASSES_ACTIVE, expires, hold.pass_id)
    end
  end
  hold.status = final_status
  hold.ended_ms = now
  local hold_json = cjson.encode(hold)
  redis.call('HSET', HOLDS, booking_id, hold_json)
  return available, was_pending, hold_json, withheld
end

-- One `seat_update` message on the event's feed channel. SEAT_WITHHELD: back, but offered to
-- the waitlist first (not on sale).
local function publish_seat_update(event_id, booking_id, hold, event_type, available, now_iso)
  local message = {
    type = 'seat_update', event_id = event_id, zone_id = hold.zone, event_type = event_type,
    quantity = hold.qty, available = available, booking_id = booking_id, timestamp = now_iso,
  }
  if hold.seats then
    message.seats = hold.seats
  end
  redis.call('PUBLISH', FEED, cjson.encode(message))
end
