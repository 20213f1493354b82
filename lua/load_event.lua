--[[ load_event: load an event's inventory (publish), or replace it from PostgreSQL (rebuild).

KEYS (every script, booking.inventory.keys.SCRIPT_KEYS order):
  1 meta  2 inv  3 seats  4 holds  5 expiry  6 users  7 idem  8 pending  9 passes
  10 passes_active  11 feed (pub/sub channel)  12 waitlist  13 wl_entries  14 wl_waiting
  15 offers  16 offers_expiry  17 withheld
ARGV:
  1 mode      publish: refuse when the event is already loaded
              rebuild: delete the event's inventory state (not the queue passes) and load
  2 document  JSON:
    {"event_id", "status": "draft"|"on_sale"|"closed", "sale_starts_ms", "max_per_user" (0 = no
     limit), "queue_enabled": 0|1, "currency",
     "zones": [{"zone_id", "price", "capacity" (GA), "seats": [label...] (seated)}],
     "bookings": [{"booking_id", "user", "zone", "qty", "seats"?, "status", "deadline_ms",
                   "amount", "idem", "fingerprint", "created_ms", "confirmed_ms"?, "ended_ms"?}],
     "suspended": [{"zone_id", "seats": [label...]} | {"zone_id", "quantity"}]}
     "waitlist_enabled": 0|1, "offer_ttl_ms",
     "waitlist": {"entries": [{"entry_id", "user", "zone" ("" = any), "qty", "position"}],
                  "offers": [{"offer_id", "entry_id", "user", "zone", "qty", "seats"?,
                              "expires_ms", "created_ms"}]}
    "bookings", "suspended" and "waitlist" are optional (a rebuild passes them). An offer
    whose seats are no longer free is dropped (its entry waits again); then every seat still
    free in a zone someone waits for is withheld: it can only have come back after the
    sell-out the entry joined on, so the waitlist keeps it (the next tick offers it). RESERVED bookings are held
    (and indexed for expiry: a lapsed one is swept on the next tick), CONFIRMED ones sold; other
    statuses only restore the record and the idempotency entry.
Returns: {1, zones, capacity, live_bookings}
Errors (nothing is written when one is returned; the whole document is checked first):
  ALREADY_LOADED           publish of an event that has inventory
  INVALID_DOCUMENT, detail malformed document
  OVERSOLD, detail         bookings + suspensions exceed a zone's capacity, or a seat has two
                           live bookings (Redis never accepts an oversold state, even from a rebuild)
]]
--@include _event_keys

local mode = ARGV[1]
if mode ~= 'publish' and mode ~= 'rebuild' then
  return {0, 'INVALID_DOCUMENT', 'mode must be publish or rebuild'}
end
if mode == 'publish' and redis.call('EXISTS', META) == 1 then
  return {0, 'ALREADY_LOADED'}
end
local ok, doc = pcall(cjson.decode, ARGV[2])
if not ok or type(doc) ~= 'table' then
  return {0, 'INVALID_DOCUMENT', 'not a JSON object'}
end

local function count(value)
  return type(value) == 'number' and value >= 0 and value == math.floor(value)
end

local status = doc.status
if status ~= 'draft' and status ~= 'on_sale' and status ~= 'closed' then
  return {0, 'INVALID_DOCUMENT', 'status'}
end
if type(doc.event_id) ~= 'string' or type(doc.zones) ~= 'table' or #doc.zones == 0 then
  return {0, 'INVALID_DOCUMENT', 'event_id and zones are required'}
end

-- zones: capacity, owner of every seat (free = '')
local zones, seat_owner, total_capacity = {}, {}, 0
for _, z in ipairs(doc.zones) do
  local zid = z.zone_id
  if type(zid) ~= 'string' or zid == '' or string.find(zid, ':', 1, true) or zones[zid] then
    return {0, 'INVALID_DOCUMENT', 'zone_id missing, repeated or containing ":"'}
  end
  if not count(z.price) then
    return {0, 'INVALID_DOCUMENT', 'price of zone ' .. zid}
  end
  local zone = {kind = 'ga', capacity = z.capacity, price = z.price, held = 0, sold = 0,
    suspended = 0, withheld = 0, offered = 0}
  if type(z.seats) == 'table' and #z.seats > 0 then
    zone.kind = 'seated'
    for _, label in ipairs(z.seats) do
      local field = zid .. ':' .. label
      if seat_owner[field] then
        return {0, 'INVALID_DOCUMENT', 'seat ' .. label .. ' repeated in zone ' .. zid}
      end
      seat_owner[field] = ''
    end
    if z.capacity ~= nil and z.capacity ~= #z.seats then
      return {0, 'INVALID_DOCUMENT', 'capacity of seated zone ' .. zid .. ' != seat count'}
    end
    zone.capacity = #z.seats
  elseif not count(z.capacity) or z.capacity < 1 then
    return {0, 'INVALID_DOCUMENT', 'capacity of zone ' .. zid}
  end
  zones[zid] = zone
  total_capacity = total_capacity + zone.capacity
end

local function take_seats(zid, labels, owner)
  for _, label in ipairs(labels) do
    local field = zid .. ':' .. label
    local current = seat_owner[field]
    if current == nil then
      return 'unknown seat ' .. label .. ' in zone ' .. zid
    end
    if current ~= '' then
      return 'seat ' .. label .. ' taken twice in zone ' .. zid
    end
    seat_owner[field] = owner
  end
end

-- bookings
local live_states = {RESERVED = 'held', CONFIRMED = 'sold'}
local all_states = {RESERVED = true, CONFIRMED = true, CANCELLED = true, EXPIRED = true,
  REFUNDED = true}
local bookings, live, user_counts = doc.bookings or {}, 0, {}
for _, b in ipairs(bookings) do
  local zone = zones[b.zone]
  if type(b.booking_id) ~= 'string' or type(b.user) ~= 'string' or not zone
      or not all_states[b.status] or not count(b.qty) or b.qty < 1 then
    return {0, 'INVALID_DOCUMENT', 'booking ' .. tostring(b.booking_id)}
  end
  local counter = live_states[b.status]
  if counter then
    if zone.kind == 'seated' then
      if type(b.seats) ~= 'table' or #b.seats ~= b.qty then
        return {0, 'INVALID_DOCUMENT', 'seats of booking ' .. b.booking_id}
      end
      local err = take_seats(b.zone, b.seats, b.booking_id)
      if err then
        return {0, 'OVERSOLD', err}
      end
    end
    zone[counter] = zone[counter] + b.qty
    user_counts[b.user] = (user_counts[b.user] or 0) + b.qty
    live = live + 1
  end
end

-- suspensions
for _, s in ipairs(doc.suspended or {}) do
  local zone = zones[s.zone_id]
  if not zone then
    return {0, 'INVALID_DOCUMENT', 'suspension of unknown zone'}
  end
  if zone.kind == 'seated' then
    local err = take_seats(s.zone_id, s.seats or {}, 'S')
    if err then
      return {0, 'OVERSOLD', err}
    end
    zone.suspended = zone.suspended + #(s.seats or {})
  elseif count(s.quantity) then
    zone.suspended = zone.suspended + s.quantity
  else
    return {0, 'INVALID_DOCUMENT', 'suspension quantity in zone ' .. s.zone_id}
  end
end

for zid, zone in pairs(zones) do
  if zone.held + zone.sold + zone.suspended > zone.capacity then
    return {0, 'OVERSOLD', 'zone ' .. zid .. ' over capacity'}
  end
end

--@include _load_waitlist

-- all checked: write
if mode == 'rebuild' then
  redis.call('DEL', META, INV, SEATS, HOLDS, EXPIRY, USERS, IDEM, PENDING, WAITLIST, WL_ENTRIES,
    WL_WAITING, OFFERS, OFFERS_EXPIRY, WITHHELD)
end
redis.call('HSET', META, 'event_id', doc.event_id, 'status', status,
  'sale_starts_ms', string.format('%d', doc.sale_starts_ms or 0),
  'max_per_user', string.format('%d', doc.max_per_user or 0),
  'queue_enabled', (doc.queue_enabled == 1 or doc.queue_enabled == true) and '1' or '0',
  'currency', doc.currency or '',
  'waitlist_enabled', (doc.waitlist_enabled == 1 or doc.waitlist_enabled == true) and '1' or '0',
  'offer_ttl_ms', string.format('%d', doc.offer_ttl_ms or 300000))

local totals = {available = 0, held = 0, sold = 0, suspended = 0, withheld = 0}
for zid, zone in pairs(zones) do
  local available = zone.capacity - zone.held - zone.sold - zone.suspended - zone.withheld
  redis.call('HSET', INV, zid .. ':kind', zone.kind, zid .. ':capacity', zone.capacity,
    zid .. ':price', string.format('%d', zone.price), zid .. ':available', available,
    zid .. ':held', zone.held, zid .. ':sold', zone.sold, zid .. ':suspended', zone.suspended,
    zid .. ':withheld', zone.withheld, zid .. ':offered', zone.offered)
  totals.available = totals.available + available
  totals.held = totals.held + zone.held
  totals.sold = totals.sold + zone.sold
  totals.suspended = totals.suspended + zone.suspended
  totals.withheld = totals.withheld + zone.withheld
end
redis.call('HSET', INV, 'total:capacity', total_capacity, 'total:available', totals.available,
  'total:held', totals.held, 'total:sold', totals.sold, 'total:suspended', totals.suspended,
  'total:withheld', totals.withheld)
write_waitlist()

-- seat owners in chunks (HSET with thousands of arguments at once would hit Lua's stack limit)
local batch = {}
for field, owner in pairs(seat_owner) do
  batch[#batch + 1] = field
  batch[#batch + 1] = owner
  if #batch >= 1000 then
    redis.call('HSET', SEATS, unpack(batch))
    batch = {}
  end
end
if #batch > 0 then
  redis.call('HSET', SEATS, unpack(batch))
end

for _, b in ipairs(bookings) do
  local hold = {user = b.user, zone = b.zone, qty = b.qty, status = b.status,
    deadline_ms = b.deadline_ms or 0, amount = b.amount or 0, idem = b.idem or '',
    created_ms = b.created_ms or 0, confirmed_ms = b.confirmed_ms, ended_ms = b.ended_ms}
  if type(b.seats) == 'table' and #b.seats > 0 then
    hold.seats = b.seats
  end
  redis.call('HSET', HOLDS, b.booking_id, cjson.encode(hold))
  if b.status == 'RESERVED' then
    redis.call('ZADD', EXPIRY, hold.deadline_ms, b.booking_id)
  end
  if hold.idem ~= '' and type(b.fingerprint) == 'string' then
    redis.call('HSET', IDEM, b.user .. ':' .. hold.idem, b.booking_id .. '|' .. b.fingerprint)
  end
end
for user, qty in pairs(user_counts) do
  redis.call('HSET', USERS, user, qty)
end

return {1, #doc.zones, total_capacity, live}
