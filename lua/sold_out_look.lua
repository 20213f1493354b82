--[[ sold_out_look: what a booking process needs to answer a sold-out event's reserves itself
(booking/sold_out.py). Read-only.

KEYS (every script, booking.inventory.keys.SCRIPT_KEYS order):
  1 meta  2 inv  3 seats  4 holds  5 expiry  6 users  7 idem  8 pending  9 passes
  10 passes_active  11 feed (pub/sub channel)  12 waitlist  13 wl_entries  14 wl_waiting
  15 offers  16 offers_expiry  17 withheld
ARGV:
  1 max_fields  also return the idempotency fields (`<user>:<key>`) when the event is sold out,
                on sale and without a queue (the only case a process walls) and has at most
                this many of them (0: never)
Returns:
  {status, sale_starts_ms, queue_enabled, total_available, idem_count, ga_zones, idem_fields}
  status "" (and nothing else) when the event is not loaded; idem_fields is empty unless the
  event qualifies.
Errors: none (read-only; an event Redis does not hold answers status "").
]]
--@include _event_keys

local meta = redis.call('HMGET', META, 'status', 'sale_starts_ms', 'queue_enabled')
if not meta[1] then
  return {''}
end
local inv = redis.call('HGETALL', INV)
local ga_zones, total = {}, '0'
for i = 1, #inv, 2 do
  local field, value = inv[i], inv[i + 1]
  if field == 'total:available' then
    total = value
  elseif value == 'ga' and string.sub(field, -5) == ':kind' then
    ga_zones[#ga_zones + 1] = string.sub(field, 1, -6)
  end
end
local fields = {}
local count = redis.call('HLEN', IDEM)
local qualifies = meta[1] == 'on_sale' and meta[3] ~= '1' and (tonumber(total) or 1) <= 0
if qualifies and count > 0 and count <= (tonumber(ARGV[1]) or 0) then
  fields = redis.call('HKEYS', IDEM)
end
return {meta[1], meta[2] or '0', meta[3] or '0', total, count, ga_zones, fields}
