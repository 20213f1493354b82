-- Included (`--@include _load_waitlist`) by load_event.lua, after the bookings and suspensions
-- are placed and checked: the waitlist part of the document. Never refuses the document (an
-- offer is a promise, not a sale): an offer that no longer fits is dropped and its entry waits
-- again.
local waitlist = type(doc.waitlist) == 'table' and doc.waitlist or {}
local kept_offers, offer_of_entry, withheld_free = {}, {}, {}
for _, o in ipairs(waitlist.offers or {}) do
  local zone = zones[o.zone]
  local fits = zone and type(o.offer_id) == 'string' and count(o.qty) and o.qty >= 1
    and zone.held + zone.sold + zone.suspended + zone.withheld + o.qty <= zone.capacity
  if fits and zone.kind == 'seated' then
    fits = type(o.seats) == 'table' and #o.seats == o.qty
    for _, label in ipairs(fits and o.seats or {}) do
      if seat_owner[o.zone .. ':' .. label] ~= '' then
        fits = false
      end
    end
    for _, label in ipairs(fits and o.seats or {}) do
      seat_owner[o.zone .. ':' .. label] = 'W'
    end
  end
  if fits then
    zone.withheld = zone.withheld + o.qty
    zone.offered = zone.offered + o.qty
    kept_offers[#kept_offers + 1] = o
    offer_of_entry[o.entry_id] = o.offer_id
  end
end

local waiting_counts = {}
for _, e in ipairs(waitlist.entries or {}) do
  if not offer_of_entry[e.entry_id] then
    local key = (e.zone == '' or e.zone == nil) and '*' or e.zone
    waiting_counts[key] = (waiting_counts[key] or 0) + 1
  end
end
for zid, zone in pairs(zones) do
  if (waiting_counts[zid] or 0) > 0 or (waiting_counts['*'] or 0) > 0 then
    zone.withheld = zone.capacity - zone.held - zone.sold - zone.suspended
    if zone.kind == 'seated' then
      for field, owner in pairs(seat_owner) do
        if owner == '' and string.sub(field, 1, #zid + 1) == zid .. ':' then
          seat_owner[field] = 'W'
          withheld_free[#withheld_free + 1] = field
        end
      end
    end
  end
end

local function write_waitlist()
  for _, e in ipairs(waitlist.entries or {}) do
    local entry = {entry_id = e.entry_id, zone = e.zone or '', qty = e.qty, position = e.position,
      offer = offer_of_entry[e.entry_id]}
    redis.call('ZADD', WAITLIST, e.position, e.user)
    redis.call('HSET', WL_ENTRIES, e.user, cjson.encode(entry))
  end
  for key, n in pairs(waiting_counts) do
    redis.call('HSET', WL_WAITING, key, n)
  end
  for _, o in ipairs(kept_offers) do
    local offer = {entry_id = o.entry_id, user = o.user, zone = o.zone, qty = o.qty,
      seats = type(o.seats) == 'table' and o.seats or nil, expires_ms = o.expires_ms, created_ms = o.created_ms or 0,
      status = 'OUTSTANDING'}
    redis.call('HSET', OFFERS, o.offer_id, cjson.encode(offer))
    redis.call('ZADD', OFFERS_EXPIRY, o.expires_ms, o.offer_id)
  end
  for _, field in ipairs(withheld_free) do
    redis.call('ZADD', WITHHELD, 0, field)
  end
end
