-- Included (`--@include _withhold`, after _event_keys) by every script through which seats come
-- back (release, sweep, unsuspend): the one place that decides whether they go back on sale or
-- to the waitlist first.

-- True when the event's waitlist is on and someone waits (without an offer) for this zone or
-- for any zone.
local function waitlist_wants(zone)
  if redis.call('HGET', META, 'waitlist_enabled') ~= '1' then
    return false
  end
  local waiting = redis.call('HMGET', WL_WAITING, zone, '*')
  return (tonumber(waiting[1]) or 0) > 0 or (tonumber(waiting[2]) or 0) > 0
end

-- `qty` seats of `zone` (seated: `labels`, the seats themselves) come back. Withheld for the
-- waitlist (seat owner "W", counted in `<zone>:withheld`) when someone waits, else on sale.
-- The caller has already taken qty off the counter they came from. Returns the zone's
-- available count and whether they were withheld.
local function put_back(zone, qty, labels)
  if waitlist_wants(zone) then
    for _, label in ipairs(labels or {}) do
      local field = zone .. ':' .. label
      redis.call('HSET', SEATS, field, 'W')
      redis.call('ZADD', WITHHELD, 0, field)
    end
    redis.call('HINCRBY', INV, zone .. ':withheld', qty)
    redis.call('HINCRBY', INV, 'total:withheld', qty)
    return tonumber(redis.call('HGET', INV, zone .. ':available')), true
  end
  for _, label in ipairs(labels or {}) do
    redis.call('HSET', SEATS, zone .. ':' .. label, '')
  end
  redis.call('HINCRBY', INV, 'total:available', qty)
  return redis.call('HINCRBY', INV, zone .. ':available', qty), false
end
