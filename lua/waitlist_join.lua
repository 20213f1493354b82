--[[ waitlist_join: put a buyer's entry (already committed in PostgreSQL) on the event's waitlist.

KEYS (every script, booking.inventory.keys.SCRIPT_KEYS order):
  1 meta  2 inv  3 seats  4 holds  5 expiry  6 users  7 idem  8 pending  9 passes
  10 passes_active  11 feed (pub/sub channel)  12 waitlist  13 wl_entries  14 wl_waiting
  15 offers  16 offers_expiry  17 withheld
ARGV:
  1 user_id
  2 entry_id   PostgreSQL's id of the entry
  3 zone_id    "" = any zone of the event
  4 quantity   seats wanted (integer >= 1)
  5 position   PostgreSQL's join position (orders the waitlist)
Returns: {1, added (0|1)}; added = 0 when the user already has an entry (left unchanged), so
  calling it again (a retried join, the worker's repair) is harmless.
Errors:
  EVENT_NOT_LOADED   no inventory for this event in Redis
  UNKNOWN_ZONE
Effects: waitlist (zset by position), the entry record, the zone's (or "*") waiting count.
]]
--@include _event_keys

local user, entry_id, zone, qty, position = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]),
  tonumber(ARGV[5])

if redis.call('EXISTS', META) == 0 then
  return {0, 'EVENT_NOT_LOADED'}
end
if zone ~= '' and not redis.call('HGET', INV, zone .. ':kind') then
  return {0, 'UNKNOWN_ZONE'}
end
if redis.call('HEXISTS', WL_ENTRIES, user) == 1 then
  return {1, 0}
end
redis.call('ZADD', WAITLIST, position, user)
redis.call('HSET', WL_ENTRIES, user,
  cjson.encode({entry_id = entry_id, zone = zone, qty = qty, position = position}))
redis.call('HINCRBY', WL_WAITING, zone == '' and '*' or zone, 1)
return {1, 1}
