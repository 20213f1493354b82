--[[ waitlist_leave: take a buyer off the waitlist; an outstanding offer goes to the next in line.

KEYS (every script, booking.inventory.keys.SCRIPT_KEYS order):
  1 meta  2 inv  3 seats  4 holds  5 expiry  6 users  7 idem  8 pending  9 passes
  10 passes_active  11 feed (pub/sub channel)  12 waitlist  13 wl_entries  14 wl_waiting
  15 offers  16 offers_expiry  17 withheld
ARGV:
  1 user_id
  2 now_ms
  3 entry_id   "" = whatever entry the user has; else only that entry (the worker's repair
               must not remove a newer entry of the same user)
Returns: {1, removed (0|1), offer_id ("" when the entry had no outstanding offer)}
Errors: none.
Effects: entry, waitlist and waiting count removed; an outstanding offer WITHDRAWN (kept until
  PostgreSQL records it), its seats free withheld again (the next tick offers them on).
]]
--@include _event_keys

local user, now, only = ARGV[1], tonumber(ARGV[2]), ARGV[3] or ''

local raw = redis.call('HGET', WL_ENTRIES, user)
if not raw then
  return {1, 0, ''}
end
local entry = cjson.decode(raw)
if only ~= '' and entry.entry_id ~= only then
  return {1, 0, ''}
end
redis.call('HDEL', WL_ENTRIES, user)
redis.call('ZREM', WAITLIST, user)
local offer_id = entry.offer or ''
if offer_id == '' then
  local counted = entry.zone == '' and '*' or entry.zone
  if redis.call('HINCRBY', WL_WAITING, counted, -1) <= 0 then
    redis.call('HDEL', WL_WAITING, counted)
  end
  return {1, 1, ''}
end
local offer_raw = redis.call('HGET', OFFERS, offer_id)
local offer = offer_raw and cjson.decode(offer_raw)
if offer and offer.status == 'OUTSTANDING' then
  offer.status, offer.ended_ms = 'WITHDRAWN', now
  redis.call('HSET', OFFERS, offer_id, cjson.encode(offer))
  redis.call('ZREM', OFFERS_EXPIRY, offer_id)
  redis.call('HINCRBY', INV, offer.zone .. ':offered', -offer.qty)
  for _, label in ipairs(offer.seats or {}) do
    redis.call('ZADD', WITHHELD, 0, offer.zone .. ':' .. label)
  end
else
  offer_id = ''
end
return {1, 1, offer_id}
