--[[ reserve: hold general-admission tickets or a set of seats (all or nothing), atomically.

KEYS (every script, booking.inventory.keys.SCRIPT_KEYS order):
  1 meta  2 inv  3 seats  4 holds  5 expiry  6 users  7 idem  8 pending  9 passes
  10 passes_active  11 feed (pub/sub channel)  12 waitlist  13 wl_entries  14 wl_waiting
  15 offers  16 offers_expiry  17 withheld
ARGV:
  1 booking_id   fresh uuid minted by the caller; used only when a new hold is written
  2 user_id
  3 zone_id
  4 quantity     GA: tickets wanted (integer >= 1); seated: ignored (quantity = number of seats)
  5 seats        seated: JSON array of seat labels; GA: ""
  6 idem_key     the Idempotency-Key; "" = no idempotency
  7 fingerprint  hash of the request body (computed by the caller)
  8 pass_id      queue pass; "" if none
  9 now_ms       the caller's clock (ms since epoch)
  10 ttl_ms      hold duration; deadline_ms = now_ms + ttl_ms
  11 now_iso     RFC 3339 timestamp for the feed message
  12 offer_id    waitlist offer (booking/waitlist); "" if none. An offer stands in for the
                 queue pass and its seats come from the zone's withheld ones, not `available`.
Returns:
  {1, booking_id, replay (0|1), hold_json}; on a replay booking_id is the first booking's id
  and hold_json its current record.
Errors ({0, CODE} or {0, CODE, detail}):
  IDEMPOTENCY_KEY_REUSED  same user + key, different fingerprint
  IDEMPOTENCY_IN_FLIGHT   same user + key + fingerprint, first hold not yet durable (pending)
  EVENT_NOT_LOADED        no inventory for this event in Redis
  SALE_NOT_OPEN           status is not on_sale, or now_ms < sale_starts_ms
  UNKNOWN_ZONE
  INVALID_SEATS, detail   seats missing in a seated zone / given in a GA zone / empty / duplicate
  INVALID_QUANTITY        GA quantity not an integer >= 1
  PASS_REQUIRED           queue_enabled and no pass_id
  PASS_INVALID, why       'unknown' pass (never issued, already used, or lapsed and swept),
                          'other_user' (issued to someone else), 'expired' (expires_ms <= now_ms),
                          or the reason the caller found: pass_id '!rejected:<why>'
                          (booking.queue.passes: not_ours, other_event, other_user, expired)
  UNKNOWN_SEAT, label
  SOLD_OUT, available     zone has fewer than asked (detail "0" = nothing left at all)
  SEAT_UNAVAILABLE, label seat held, sold or suspended
  USER_LIMIT, remaining   tickets the user may still take
  BOOKING_EXISTS          booking_id already used (caller bug)
  OFFER_INVALID           unknown offer, another user's, or no longer outstanding
  OFFER_EXPIRED           the offer's expires_ms <= now_ms
  OFFER_MISMATCH, what    zone, quantity or seats differ from the offer
Check order, and why:
  1 idempotency first: a replay answers the first result even after the sale closed, the pass
    was consumed or the seats were sold to others.
  2 sale open, 3 zone, 4 request shape, 5 queue pass (validated, not consumed yet),
  6 seats exist / availability, 7 per-user limit.
  The pass is consumed only when the hold is written: a refused request (seat taken, limit)
  keeps the pass, so a buyer can pick other seats with it.
  With queue_enabled = 0 the pass argument is ignored and nothing is consumed.
  The offer, like the pass, is checked at 5 and consumed only with the write.
Effects: hold record (RESERVED; with the consumed pass's id and record, which a release of the
  hold while still pending puts back: lua/_give_back.lua), expiry index, zone + total counters,
  user count, pending, idem, seat owners; PUBLISH SEAT_RESERVED. With an offer: withheld + offered -> held, the
  offer TAKEN (kept until PostgreSQL records it), the waitlist entry gone.
]]
--@include _event_keys

local booking_id, user, zone = ARGV[1], ARGV[2], ARGV[3]
local seats_arg, idem_key, fingerprint, pass_id = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local now, ttl, now_iso = tonumber(ARGV[9]), tonumber(ARGV[10]), ARGV[11]
local offer_id = ARGV[12] or ''

-- 1. idempotency
local idem_field = nil
if idem_key ~= '' then
  idem_field = user .. ':' .. idem_key
  local seen = redis.call('HGET', IDEM, idem_field)
  if seen then
    local sep = string.find(seen, '|', 1, true)
    local first_id = string.sub(seen, 1, sep - 1)
    if string.sub(seen, sep + 1) ~= fingerprint then
      return {0, 'IDEMPOTENCY_KEY_REUSED'}
    end
    if redis.call('HEXISTS', PENDING, first_id) == 1 then
      return {0, 'IDEMPOTENCY_IN_FLIGHT'}
    end
    local first = redis.call('HGET', HOLDS, first_id)
    if not first then
      return {0, 'NOT_FOUND'}
    end
    return {1, first_id, 1, first}
  end
end

-- 2. sale open
local meta = redis.call('HMGET', META, 'status', 'sale_starts_ms', 'max_per_user',
  'queue_enabled', 'event_id')
if not meta[1] then
  return {0, 'EVENT_NOT_LOADED'}
end
if meta[1] ~= 'on_sale' or now < (tonumber(meta[2]) or 0) then
  return {0, 'SALE_NOT_OPEN'}
end

-- 3. zone
local zone_info = redis.call('HMGET', INV, zone .. ':kind', zone .. ':available', zone .. ':price')
if not zone_info[1] then
  return {0, 'UNKNOWN_ZONE'}
end
local available = tonumber(zone_info[2])

-- 4. request shape
local labels = nil
local qty
if zone_info[1] == 'seated' then
  if seats_arg == '' then
    return {0, 'INVALID_SEATS', 'seats are required in a seated zone'}
  end
  labels = cjson.decode(seats_arg)
  qty = #labels
  if qty == 0 then
    return {0, 'INVALID_SEATS', 'at least one seat is required'}
  end
  local seen_labels = {}
  for _, label in ipairs(labels) do
    if seen_labels[label] then
      return {0, 'INVALID_SEATS', 'seat ' .. label .. ' is listed twice'}
    end
    seen_labels[label] = true
  end
else
  if seats_arg ~= '' then
    return {0, 'INVALID_SEATS', 'seats are not allowed in a general-admission zone'}
  end
  qty = tonumber(ARGV[4])
  if not qty or qty < 1 or qty ~= math.floor(qty) then
    return {0, 'INVALID_QUANTITY'}
  end
end

-- 5. waitlist offer or queue pass (validated here, consumed with the write)
local offer = nil
if offer_id ~= '' then
  local raw_offer = redis.call('HGET', OFFERS, offer_id)
  offer = raw_offer and cjson.decode(raw_offer)
  if not offer or offer.user ~= user or offer.status ~= 'OUTSTANDING' then
    return {0, 'OFFER_INVALID'}
  end
  if offer.expires_ms <= now then
    return {0, 'OFFER_EXPIRED'}
  end
  if offer.zone ~= zone then
    return {0, 'OFFER_MISMATCH', 'zone'}
  end
  if qty ~= offer.qty then
    return {0, 'OFFER_MISMATCH', 'quantity'}
  end
  if labels then
    local offered = {}
    for _, label in ipairs(offer.seats or {}) do
      offered[label] = true
    end
    for _, label in ipairs(labels) do
      if not offered[label] then
        return {0, 'OFFER_MISMATCH', 'seats'}
      end
    end
  end
end
local pass_needed = meta[4] == '1' and not offer
local pass = nil
if pass_needed then
  if pass_id == '' then
    return {0, 'PASS_REQUIRED'}
  end
  if string.sub(pass_id, 1, 10) == '!rejected:' then
    return {0, 'PASS_INVALID', string.sub(pass_id, 11)}
  end
  pass = redis.call('HGET', PASSES, pass_id)
  if not pass then
    return {0, 'PASS_INVALID', 'unknown'}
  end
  local sep = string.find(pass, '|', 1, true)
  if string.sub(pass, 1, sep - 1) ~= user then
    return {0, 'PASS_INVALID', 'other_user'}
  end
  if tonumber(string.sub(pass, sep + 1)) <= now then
    return {0, 'PASS_INVALID', 'expired'}
  end
end

-- 6. availability
local seat_fields = nil
if labels then
  seat_fields = {}
  for i, label in ipairs(labels) do
    seat_fields[i] = zone .. ':' .. label
  end
  local owners = redis.call('HMGET', SEATS, unpack(seat_fields))
  for i, owner in ipairs(owners) do
    if not owner then
      return {0, 'UNKNOWN_SEAT', labels[i]}
    end
  end
  if available <= 0 and not offer then
    return {0, 'SOLD_OUT', '0'}
  end
  local free = offer and 'W' or ''
  for i, owner in ipairs(owners) do
    if owner ~= free then
      return {0, 'SEAT_UNAVAILABLE', labels[i]}
    end
  end
elseif not offer and available < qty then
  return {0, 'SOLD_OUT', tostring(math.max(available, 0))}
end

-- 7. per-user limit (live holds + confirmed tickets)
local limit = tonumber(meta[3]) or 0
if limit > 0 then
  local have = tonumber(redis.call('HGET', USERS, user) or '0')
  if have + qty > limit then
    return {0, 'USER_LIMIT', tostring(math.max(limit - have, 0))}
  end
end

if redis.call('HEXISTS', HOLDS, booking_id) == 1 then
  return {0, 'BOOKING_EXISTS'}
end

-- write
if pass_needed then
  redis.call('HDEL', PASSES, pass_id)
  redis.call('ZREM', PASSES_ACTIVE, pass_id)
end
if seat_fields then
  for _, field in ipairs(seat_fields) do
    redis.call('HSET', SEATS, field, booking_id)
  end
end
local deadline = now + ttl
local hold = {
  user = user, zone = zone, qty = qty, status = 'RESERVED', deadline_ms = deadline,
  amount = (tonumber(zone_info[3]) or 0) * qty, idem = idem_key, created_ms = now,
}
if labels then
  hold.seats = labels
end
if pass_needed then
  -- kept so that a hold never acknowledged (PostgreSQL refused or failed it) gives it back
  hold.pass_id, hold.pass = pass_id, pass
end
local hold_json = cjson.encode(hold)
redis.call('HSET', HOLDS, booking_id, hold_json)
redis.call('ZADD', EXPIRY, deadline, booking_id)
local from = offer and 'withheld' or 'available'
local left = redis.call('HINCRBY', INV, zone .. ':' .. from, -qty)
redis.call('HINCRBY', INV, zone .. ':held', qty)
redis.call('HINCRBY', INV, 'total:' .. from, -qty)
redis.call('HINCRBY', INV, 'total:held', qty)
if offer then
  left = available
  redis.call('HINCRBY', INV, zone .. ':offered', -qty)
  offer.status, offer.booking_id, offer.ended_ms = 'TAKEN', booking_id, now
  redis.call('HSET', OFFERS, offer_id, cjson.encode(offer))
  redis.call('ZREM', OFFERS_EXPIRY, offer_id)
  local entry = redis.call('HGET', WL_ENTRIES, user)
  if entry and cjson.decode(entry).offer == offer_id then
    redis.call('HDEL', WL_ENTRIES, user)
    redis.call('ZREM', WAITLIST, user)
  end
end
redis.call('HINCRBY', USERS, user, qty)
redis.call('HSET', PENDING, booking_id, 1)
if idem_field then
  redis.call('HSET', IDEM, idem_field, booking_id .. '|' .. fingerprint)
end

local message = {
  type = 'seat_update', event_id = meta[5], zone_id = zone, event_type = 'SEAT_RESERVED',
  quantity = qty, available = left, booking_id = booking_id, timestamp = now_iso,
}
if labels then
  message.seats = labels
end
redis.call('PUBLISH', FEED, cjson.encode(message))

return {1, booking_id, 0, hold_json}
