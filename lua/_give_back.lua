-- Included (`--@include _give_back`, after _event_keys) by release.lua and sweep.lua: the one
-- copy of how a live hold's seats go back on sale and how the feed hears of it.

-- Frees the hold's seats (those it still owns), moves qty from `counter` (held | sold) back to
-- available, drops the user's count, forgets an unacknowledged hold's idempotency entry, and
-- stores the record with its final status. Returns the zone's new available count, whether the
-- hold was still pending (never acknowledged), and the stored JSON.
local function give_back(booking_id, hold, counter, final_status, now)
  local zone, qty = hold.zone, hold.qty
  if hold.seats then
    for _, label in ipairs(hold.seats) do
      local field = zone .. ':' .. label
      if redis.call('HGET', SEATS, field) == booking_id then
        redis.call('HSET', SEATS, field, '')
      end
    end
  end
  redis.call('HINCRBY', INV, zone .. ':' .. counter, -qty)
  redis.call('HINCRBY', INV, 'total:' .. counter, -qty)
  redis.call('HINCRBY', INV, 'total:available', qty)
  local available = redis.call('HINCRBY', INV, zone .. ':available', qty)
  if redis.call('HINCRBY', USERS, hold.user, -qty) <= 0 then
    redis.call('HDEL', USERS, hold.user)
  end
  local was_pending = redis.call('HDEL', PENDING, booking_id)
  if was_pending == 1 and hold.idem ~= '' then
    -- never acknowledged (not durable): a retry with the same key must start afresh
    redis.call('HDEL', IDEM, hold.user .. ':' .. hold.idem)
  end
  hold.status = final_status
  hold.ended_ms = now
  local hold_json = cjson.encode(hold)
  redis.call('HSET', HOLDS, booking_id, hold_json)
  return available, was_pending, hold_json
end

-- One `seat_update` message on the event's feed channel.
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
