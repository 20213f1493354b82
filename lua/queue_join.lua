--[[ queue_join: join an event's queue, or answer where the user already is.

KEYS (every queue script, booking.inventory.keys.QUEUE_SCRIPT_KEYS order):
  1 queue  2 waiting  3 pre  4 admitted  5 passes  6 passes_active  7 inv  8 feed (channel)
ARGV:
  1 user_id  2 now_ms
Returns: {1, status, a, b, rate, release_per_tick, tick_ms, sold_out}: the placement, then the
  outflow the answer's wait estimate needs (as queue_look returns it; absent fields are '')
  'waiting', position, ''         position 1-based; pre-queue users (who sit in front of every
                                  later joiner until the shuffle places them) are counted in
  'pre', pre_queue_size, ''       joined before the sale opened: shuffled at sale start
  'admitted', pass, expires_ms    admitted earlier and the pass is still unused and unexpired
Errors:
  QUEUE_NOT_LOADED  no queue in Redis for the event (the caller sets it up from PostgreSQL)
  QUEUE_CLOSED      the queue does not admit any more
  SOLD_OUT          the event sold out
Joining twice keeps the first place. A user whose pass was used or lapsed joins at the back.
Later joiners are scored 10^12 + seq, behind the shuffled pre-queue (scored 1..n).
]]
local QUEUE = KEYS[1]
local WAITING = KEYS[2]
local PRE = KEYS[3]
local ADMITTED = KEYS[4]
local PASSES = KEYS[5]

local user, now = ARGV[1], tonumber(ARGV[2])
local q = redis.call('HMGET', QUEUE, 'open', 'sale_starts_ms', 'sold_out', 'rate',
  'release_per_tick', 'tick_ms')
if not q[1] then
  return {0, 'QUEUE_NOT_LOADED'}
end
if q[3] == '1' then
  return {0, 'SOLD_OUT'}
end
if q[1] ~= '1' then
  return {0, 'QUEUE_CLOSED'}
end

local function placed(status, a, b)
  return {1, status, a, b, q[4] or '', q[5] or '', q[6] or '', q[3] or ''}
end

local record = redis.call('HGET', ADMITTED, user)
if record then
  local pass_id, expires, token = string.match(record, '^([^|]*)|([^|]*)|(.*)$')
  if tonumber(expires) > now and redis.call('HEXISTS', PASSES, pass_id) == 1 then
    return placed('admitted', token, expires)
  end
  redis.call('HDEL', ADMITTED, user)
end

local rank = redis.call('ZRANK', WAITING, user)
if rank then
  return placed('waiting', rank + 1 + redis.call('ZCARD', PRE), '')
end
if redis.call('ZSCORE', PRE, user) then
  return placed('pre', redis.call('ZCARD', PRE), '')
end
if now < (tonumber(q[2]) or 0) then
  redis.call('ZADD', PRE, now, user)
  return placed('pre', redis.call('ZCARD', PRE), '')
end
local seq = redis.call('HINCRBY', QUEUE, 'seq', 1)
redis.call('ZADD', WAITING, string.format('%d', 1000000000000 + seq), user)
return placed('waiting', redis.call('ZRANK', WAITING, user) + 1 + redis.call('ZCARD', PRE), '')
