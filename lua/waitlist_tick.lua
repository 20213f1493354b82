--[[ waitlist_tick: one event's waitlist step: lapse due offers, offer withheld seats to the head
of the waitlist, put withheld seats nobody waits for back on sale.

KEYS (every script, booking.inventory.keys.SCRIPT_KEYS order):
  1 meta  2 inv  3 seats  4 holds  5 expiry  6 users  7 idem  8 pending  9 passes
  10 passes_active  11 feed (pub/sub channel)  12 waitlist  13 wl_entries  14 wl_waiting
  15 offers  16 offers_expiry  17 withheld
ARGV:
  1 now_ms
  2 now_iso     RFC 3339 timestamp for the feed messages
  3 offer_ids   JSON array of fresh ids minted by the caller: at most this many offers are made
  4 scan        how many waitlist entries (from the head) may be looked at
Returns: {1, made, lapsed, returned, waiting, outstanding, withheld}
  made/lapsed: offers made/lapsed by this call; returned: seats put back on sale; waiting:
  entries still without an offer; outstanding: offers not yet taken or lapsed; withheld: seats
  still withheld (offered or not). All three 0 = nothing left to do for this event.
Errors: none (an event without inventory answers zeros).
Order, and why: lapsing first frees seats that the same call offers to the next in line; an
  entry is skipped only when it already holds an offer, never because it wants more than is
  free: it gets what there is (an offer for fewer seats), so a large request cannot stall the
  line. Seats go back on sale only when no entry waits for their zone (nor for any zone).
Effects: offers (OUTSTANDING, LAPSED), their expiry index, entries (offer id; a lapsed one
  leaves the waitlist), waiting counts, `<zone>:offered`, `<zone>:withheld` -> available and
  seats "W" -> "" (PUBLISH SEAT_AVAILABLE per zone returned).
]]
--@include _event_keys

local now, now_iso = tonumber(ARGV[1]), ARGV[2]
local ids, scan = cjson.decode(ARGV[3]), tonumber(ARGV[4])
local event_id = redis.call('HGET', META, 'event_id')
if not event_id then
  return {1, 0, 0, 0, 0, 0, 0}
end

local function waiting_key(zone)
  return zone == '' and '*' or zone
end

-- 1. lapse due offers: their seats stay withheld, free for the next in line
local lapsed = 0
for _, offer_id in ipairs(redis.call('ZRANGEBYSCORE', OFFERS_EXPIRY, '-inf', now)) do
  redis.call('ZREM', OFFERS_EXPIRY, offer_id)
  local raw = redis.call('HGET', OFFERS, offer_id)
  local offer = raw and cjson.decode(raw)
  if offer and offer.status == 'OUTSTANDING' then
    offer.status, offer.ended_ms = 'LAPSED', now
    redis.call('HSET', OFFERS, offer_id, cjson.encode(offer))
    redis.call('HINCRBY', INV, offer.zone .. ':offered', -offer.qty)
    for _, label in ipairs(offer.seats or {}) do
      redis.call('ZADD', WITHHELD, 0, offer.zone .. ':' .. label)
    end
    local entry = redis.call('HGET', WL_ENTRIES, offer.user)
    if entry and cjson.decode(entry).offer == offer_id then
      redis.call('HDEL', WL_ENTRIES, offer.user)
      redis.call('ZREM', WAITLIST, offer.user)
    end
    lapsed = lapsed + 1
  end
end

-- the zones, in a fixed order, with their free withheld seats (withheld, not offered)
local inv = redis.call('HGETALL', INV)
local fields = {}
for i = 1, #inv, 2 do
  fields[inv[i]] = inv[i + 1]
end
local zones, free, kind = {}, {}, {}
for field, value in pairs(fields) do
  local zone = string.match(field, '^(.*):kind$')
  if zone then
    zones[#zones + 1] = zone
    kind[zone] = value
    free[zone] = (tonumber(fields[zone .. ':withheld']) or 0)
      - (tonumber(fields[zone .. ':offered']) or 0)
  end
end
table.sort(zones)

local function any_free(wanted)
  if wanted ~= '' then
    return (free[wanted] or 0) > 0 and wanted or nil
  end
  for _, zone in ipairs(zones) do
    if free[zone] > 0 then
      return zone
    end
  end
  return nil
end

local function free_labels(zone, count)
  local members = redis.call('ZRANGEBYLEX', WITHHELD, '[' .. zone .. ':', '[' .. zone .. ':\255',
    'LIMIT', 0, count)
  local labels = {}
  for i, member in ipairs(members) do
    redis.call('ZREM', WITHHELD, member)
    labels[i] = string.sub(member, #zone + 2)
  end
  return labels
end

-- 2. offers to the head of the line
local made = 0
local ttl = tonumber(redis.call('HGET', META, 'offer_ttl_ms')) or 300000
if any_free('') and #ids > 0 then
  for _, user in ipairs(redis.call('ZRANGE', WAITLIST, 0, scan - 1)) do
    if made >= #ids or not any_free('') then
      break
    end
    local raw = redis.call('HGET', WL_ENTRIES, user)
    local entry = raw and cjson.decode(raw)
    local zone = entry and not entry.offer and any_free(entry.zone)
    if zone then
      local qty = math.min(entry.qty, free[zone])
      local offer = {entry_id = entry.entry_id, user = user, zone = zone, qty = qty,
        expires_ms = now + ttl, created_ms = now, status = 'OUTSTANDING'}
      if kind[zone] == 'seated' then
        offer.seats = free_labels(zone, qty)
        offer.qty = #offer.seats
      end
      if offer.qty > 0 then
        made = made + 1
        local offer_id = ids[made]
        redis.call('HSET', OFFERS, offer_id, cjson.encode(offer))
        redis.call('ZADD', OFFERS_EXPIRY, offer.expires_ms, offer_id)
        redis.call('HINCRBY', INV, zone .. ':offered', offer.qty)
        free[zone] = free[zone] - offer.qty
        entry.offer = offer_id
        redis.call('HSET', WL_ENTRIES, user, cjson.encode(entry))
        if redis.call('HINCRBY', WL_WAITING, waiting_key(entry.zone), -1) <= 0 then
          redis.call('HDEL', WL_WAITING, waiting_key(entry.zone))
        end
      end
    end
  end
end

-- 3. back on sale: free withheld seats of zones nobody waits for
local returned = 0
local waiting_any = tonumber(redis.call('HGET', WL_WAITING, '*')) or 0
for _, zone in ipairs(zones) do
  local count = free[zone]
  if count > 0 and waiting_any == 0 and (tonumber(redis.call('HGET', WL_WAITING, zone)) or 0) == 0
  then
    local labels = nil
    if kind[zone] == 'seated' then
      labels = free_labels(zone, count)
      for _, label in ipairs(labels) do
        redis.call('HSET', SEATS, zone .. ':' .. label, '')
      end
    end
    redis.call('HINCRBY', INV, zone .. ':withheld', -count)
    redis.call('HINCRBY', INV, 'total:withheld', -count)
    redis.call('HINCRBY', INV, 'total:available', count)
    local available = redis.call('HINCRBY', INV, zone .. ':available', count)
    free[zone] = 0
    returned = returned + count
    local message = {
      type = 'seat_update', event_id = event_id, zone_id = zone, event_type = 'SEAT_AVAILABLE',
      quantity = count, available = available, timestamp = now_iso, seats = labels,
    }
    redis.call('PUBLISH', FEED, cjson.encode(message))
  end
end

local waiting = 0
for _, count in ipairs(redis.call('HVALS', WL_WAITING)) do
  waiting = waiting + tonumber(count)
end
return {1, made, lapsed, returned, waiting, redis.call('ZCARD', OFFERS_EXPIRY),
  tonumber(redis.call('HGET', INV, 'total:withheld')) or 0}
