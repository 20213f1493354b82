--[[ queue_admit: one admission tick of an event's queue, atomically.

KEYS (every queue script, booking.inventory.keys.QUEUE_SCRIPT_KEYS order):
  1 queue  2 waiting  3 pre  4 admitted  5 passes  6 passes_active  7 inv  8 feed (channel)
ARGV:
  1 now_ms
  2 tick_ms               the worker's tick; the next tick of this event is due at
                          now + tick_ms - tick_ms/10 (copies ticking at once share one tick)
  3 expires_ms            expiry of the passes minted in this tick (now + pass_ttl)
  4.. candidates          triples user_id, pass_id, signed pass: the head of the queue as the
                          worker read it, at most release_per_tick of them
Returns:
  {1, admitted, status, waiting, passes_active, rate, n1, n2, ...}
  n1.. (1-based) which candidates were admitted, in order: the caller pushes each its pass on
  the user's own channel (on a cluster those channels live in other slots than the event's, so
  this script cannot publish them)
  status: OK | CLOSED | SOLD_OUT | NO_SEATS (no seat free, live holds may lapse) | PAUSED |
          NOT_DUE (another copy ticked) | SHUFFLE_PENDING; rate: EWMA of admitted users/s
Errors: none (every refusal is a status: the worker just moves on).
Steps: sold out (no seat available, no live hold, none withheld for the waitlist) closes the
queue and publishes one final `sold_out` on the feed; passes past their expiry leave
`passes:active` (their slots free up); then up to min(release_per_tick, max_concurrent - live
passes) candidates are admitted, in order, each only while it is still the head of the queue (a
candidate another copy admitted, or who left, is skipped; a reordered head stops the batch).
Each admitted user gets the pass record
(`passes`, `passes:active`) and the `admitted` record; the feed then gets one `progress`
message for everyone still waiting (a stream that missed its pass push finds the pass in the
read that message triggers).
]]
local QUEUE = KEYS[1]
local WAITING = KEYS[2]
local PRE = KEYS[3]
local ADMITTED = KEYS[4]
local PASSES = KEYS[5]
local PASSES_ACTIVE = KEYS[6]
local INV = KEYS[7]
local FEED = KEYS[8]

local now, tick = tonumber(ARGV[1]), tonumber(ARGV[2])
local q = redis.call('HMGET', QUEUE, 'open', 'paused', 'max_concurrent', 'release_per_tick',
  'next_tick_ms', 'sold_out', 'rate', 'last_tick_ms', 'dirty')
local rate = q[7] or '0'

local function refused(status)
  return {1, 0, status, redis.call('ZCARD', WAITING), redis.call('ZCARD', PASSES_ACTIVE), rate}
end

if q[6] == '1' then
  return refused('SOLD_OUT')
end
if q[1] ~= '1' then
  return refused('CLOSED')
end
-- seats withheld for the waitlist may still come back on sale, like live holds
local stock = redis.call('HMGET', INV, 'total:available', 'total:held', 'total:withheld')
if stock[1] and tonumber(stock[1]) <= 0 then
  if tonumber(stock[2]) <= 0 and (tonumber(stock[3]) or 0) <= 0 then
    redis.call('HSET', QUEUE, 'sold_out', '1', 'open', '0')
    redis.call('PUBLISH', FEED, cjson.encode({type = 'sold_out'}))
    return refused('SOLD_OUT')
  end
  return refused('NO_SEATS')
end
if q[2] == '1' then
  return refused('PAUSED')
end
if now < (tonumber(q[5]) or 0) then
  return refused('NOT_DUE')
end
if redis.call('ZCARD', PRE) > 0 then
  return refused('SHUFFLE_PENDING')
end

-- lapsed passes free their slots
local lapsed = redis.call('ZRANGEBYSCORE', PASSES_ACTIVE, '-inf', now)
for i = 1, #lapsed, 500 do
  redis.call('HDEL', PASSES, unpack(lapsed, i, math.min(i + 499, #lapsed)))
end
if #lapsed > 0 then
  redis.call('ZREMRANGEBYSCORE', PASSES_ACTIVE, '-inf', now)
end

local waiting_before = redis.call('ZCARD', WAITING)
local slots = math.min(tonumber(q[4]), tonumber(q[3]) - redis.call('ZCARD', PASSES_ACTIVE))
local admitted = 0
local chosen = {}
for i = 4, #ARGV, 3 do
  if admitted >= slots then
    break
  end
  local user, pass_id, token = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if redis.call('ZSCORE', WAITING, user) then
    local head = redis.call('ZRANGE', WAITING, 0, 0)
    if head[1] ~= user then
      break
    end
    redis.call('ZREM', WAITING, user)
    redis.call('HSET', PASSES, pass_id, user .. '|' .. ARGV[3])
    redis.call('ZADD', PASSES_ACTIVE, ARGV[3], pass_id)
    redis.call('HSET', ADMITTED, user, pass_id .. '|' .. ARGV[3] .. '|' .. token)
    admitted = admitted + 1
    chosen[admitted] = (i - 1) / 3
  end
end

-- the measured outflow: EWMA of admitted/s over the ticks that had someone waiting
local last = tonumber(q[8])
if waiting_before > 0 then
  local seconds = (last and now > last) and (now - last) / 1000 or tick / 1000
  local sample = admitted / math.max(seconds, 0.001)
  local previous = tonumber(q[7])
  local value = previous and (0.7 * previous + 0.3 * sample) or sample
  rate = string.format('%.4f', value)
end
redis.call('HSET', QUEUE, 'rate', rate, 'last_tick_ms', string.format('%d', now),
  'next_tick_ms', string.format('%d', now + tick - math.floor(tick / 10)),
  'tick_ms', string.format('%d', tick), 'dirty', '0')
if admitted > 0 then
  redis.call('HINCRBY', QUEUE, 'admitted_total', admitted)
end
if admitted > 0 or q[9] == '1' then
  -- admitted_ms: the tick's time, so a stream that finds its pass by reading can measure
  -- the delivery delay as one that got the pushed pass does.
  redis.call('PUBLISH', FEED, cjson.encode({type = 'progress', admitted = admitted,
    admitted_ms = now}))
end
local reply = {1, admitted, 'OK', redis.call('ZCARD', WAITING),
  redis.call('ZCARD', PASSES_ACTIVE), rate}
for n = 1, admitted do
  reply[6 + n] = chosen[n]
end
return reply
