--[[ queue_look: where many users of one event stand, read in one step (writes nothing).

The position streams' refresh: one call per tick per event and process for up to 500 users,
where a MULTI of three commands per user cost redis-py twice the CPU (measured with
loadtests/streams.py, 10,000 streams: 8.75 s -> 4.43 s of the booking process while admitting).

KEYS: the queue scripts' keys (booking.inventory.keys.QUEUE_SCRIPT_KEYS order)
ARGV: 1 now_ms, 2.. user ids
Returns: {pre_count, rate, release_per_tick, tick_ms, sold_out, then per user: rank (0-based,
          -1 if not waiting), 1 if in the pre-queue else 0, the admitted record if its pass is
          unused and unexpired else ''}; absent queue fields are ''
Errors: none
]]
local QUEUE = KEYS[1]
local WAITING = KEYS[2]
local PRE = KEYS[3]
local ADMITTED = KEYS[4]
local PASSES = KEYS[5]

local now = tonumber(ARGV[1])
local pre_count = redis.call('ZCARD', PRE)
local q = redis.call('HMGET', QUEUE, 'rate', 'release_per_tick', 'tick_ms', 'sold_out')
local out = {pre_count, q[1] or '', q[2] or '', q[3] or '', q[4] or ''}
for i = 2, #ARGV do
  local user = ARGV[i]
  local rank = redis.call('ZRANK', WAITING, user)
  local pre, record = 0, ''
  if not rank then
    rank = -1
    if redis.call('ZSCORE', PRE, user) then
      pre = 1
    else
      local admitted = redis.call('HGET', ADMITTED, user)
      if admitted then
        local pass_id, expires = string.match(admitted, '^([^|]+)|(%d+)|')
        if pass_id and tonumber(expires) > now and redis.call('HEXISTS', PASSES, pass_id) == 1 then
          record = admitted
        end
      end
    end
  end
  out[#out + 1] = rank
  out[#out + 1] = pre
  out[#out + 1] = record
end
return out
