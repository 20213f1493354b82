--[[ suspend: take free seats (seated) or free quantity (GA) out of sale (admin).

KEYS (every script, booking.inventory.keys.SCRIPT_KEYS order):
  1 meta  2 inv  3 seats  4 holds  5 expiry  6 users  7 idem  8 pending  9 passes
  10 passes_active  11 feed (pub/sub channel)  12 waitlist  13 wl_entries  14 wl_waiting
  15 offers  16 offers_expiry  17 withheld
ARGV:
  1 zone_id
  2 seats     seated: JSON array of labels; GA: ""
  3 quantity  GA: how many to take out of sale (integer >= 1); seated: ignored
  4 now_iso   RFC 3339 timestamp for the feed message
Returns: {1, changed, available}; changed = seats/quantity newly suspended (a seat that is
  already suspended is skipped, so a repeated call is a no-op).
Errors:
  EVENT_NOT_LOADED, UNKNOWN_ZONE, INVALID_SEATS detail, INVALID_QUANTITY, UNKNOWN_SEAT label,
  SEAT_UNAVAILABLE label   a held or sold seat (nothing is changed)
  SEAT_UNAVAILABLE available  GA: more asked than is free
Effects: seat -> "S", available -> suspended (zone + totals); PUBLISH SEAT_SUSPENDED (when
  changed > 0). Suspended counts as neither available nor sold.
]]
--@include _event_keys

local zone, seats_arg, now_iso = ARGV[1], ARGV[2], ARGV[4]

local event_id = redis.call('HGET', META, 'event_id')
if not event_id then
  return {0, 'EVENT_NOT_LOADED'}
end
local zone_info = redis.call('HMGET', INV, zone .. ':kind', zone .. ':available')
if not zone_info[1] then
  return {0, 'UNKNOWN_ZONE'}
end
local available = tonumber(zone_info[2])

local changed_labels = nil
local qty = 0
if zone_info[1] == 'seated' then
  if seats_arg == '' then
    return {0, 'INVALID_SEATS', 'seats are required in a seated zone'}
  end
  local labels = cjson.decode(seats_arg)
  if #labels == 0 then
    return {0, 'INVALID_SEATS', 'at least one seat is required'}
  end
  local fields = {}
  for i, label in ipairs(labels) do
    fields[i] = zone .. ':' .. label
  end
  local owners = redis.call('HMGET', SEATS, unpack(fields))
  local seen = {}
  changed_labels = {}
  for i, owner in ipairs(owners) do
    if not owner then
      return {0, 'UNKNOWN_SEAT', labels[i]}
    end
    if owner ~= '' and owner ~= 'S' then
      return {0, 'SEAT_UNAVAILABLE', labels[i]}
    end
    if owner == '' and not seen[fields[i]] then
      seen[fields[i]] = true
      changed_labels[#changed_labels + 1] = labels[i]
    end
  end
  for _, label in ipairs(changed_labels) do
    redis.call('HSET', SEATS, zone .. ':' .. label, 'S')
  end
  qty = #changed_labels
else
  if seats_arg ~= '' then
    return {0, 'INVALID_SEATS', 'seats are not allowed in a general-admission zone'}
  end
  qty = tonumber(ARGV[3])
  if not qty or qty < 1 or qty ~= math.floor(qty) then
    return {0, 'INVALID_QUANTITY'}
  end
  if qty > available then
    return {0, 'SEAT_UNAVAILABLE', tostring(available)}
  end
end

if qty == 0 then
  return {1, 0, available}
end
available = redis.call('HINCRBY', INV, zone .. ':available', -qty)
redis.call('HINCRBY', INV, zone .. ':suspended', qty)
redis.call('HINCRBY', INV, 'total:available', -qty)
redis.call('HINCRBY', INV, 'total:suspended', qty)

local message = {
  type = 'seat_update', event_id = event_id, zone_id = zone, event_type = 'SEAT_SUSPENDED',
  quantity = qty, available = available, timestamp = now_iso,
}
if changed_labels then
  message.seats = changed_labels
end
redis.call('PUBLISH', FEED, cjson.encode(message))

return {1, qty, available}
