--[[ queue_shuffle: place the pre-queue (users who joined before the sale opened) in front of
the queue, in the order the caller computed with booking.queue.service.shuffled_order(seed, joiners).

KEYS (every queue script, booking.inventory.keys.QUEUE_SCRIPT_KEYS order):
  1 queue  2 waiting  3 pre  4 admitted  5 passes  6 passes_active  7 inv  8 feed (channel)
ARGV:
  1..n  user ids in their shuffled order
Returns: {1, placed}
Errors:
  ALREADY_SHUFFLED  a shuffle already ran (another worker): nothing changes
  PRE_CHANGED       the pre-queue is not exactly these users (read it again)
Once: the pre-queue is emptied in the same step, and later joiners are scored 10^12 + seq, so
they stay behind.
]]
local QUEUE = KEYS[1]
local WAITING = KEYS[2]
local PRE = KEYS[3]
local FEED = KEYS[8]

if redis.call('HGET', QUEUE, 'shuffled') == '1' then
  return {0, 'ALREADY_SHUFFLED'}
end
if redis.call('ZCARD', PRE) ~= #ARGV then
  return {0, 'PRE_CHANGED'}
end
for _, user in ipairs(ARGV) do
  if not redis.call('ZSCORE', PRE, user) then
    return {0, 'PRE_CHANGED'}
  end
end
for position, user in ipairs(ARGV) do
  redis.call('ZADD', WAITING, position, user)
end
redis.call('DEL', PRE)
redis.call('HSET', QUEUE, 'shuffled', '1', 'shuffled_count', #ARGV)
redis.call('PUBLISH', FEED, cjson.encode({type = 'progress', admitted = 0}))
return {1, #ARGV}
