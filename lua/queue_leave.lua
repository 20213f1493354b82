--[[ queue_leave: leave an event's queue; an unused pass is revoked and its slot freed.

KEYS (every queue script, booking.inventory.keys.QUEUE_SCRIPT_KEYS order):
  1 queue  2 waiting  3 pre  4 admitted  5 passes  6 passes_active  7 inv  8 feed (channel)
ARGV:
  1 user_id
Returns: {1, left (0|1)}   0: the user was not in the queue
Errors: none.
The next admission tick publishes the new positions (`dirty` makes it publish even when it
admits nobody), so a leave costs one write, not a message per waiting user.
]]
local QUEUE = KEYS[1]
local WAITING = KEYS[2]
local PRE = KEYS[3]
local ADMITTED = KEYS[4]
local PASSES = KEYS[5]
local PASSES_ACTIVE = KEYS[6]

local user = ARGV[1]
local left = redis.call('ZREM', WAITING, user) + redis.call('ZREM', PRE, user)
local record = redis.call('HGET', ADMITTED, user)
if record then
  local pass_id = string.match(record, '^([^|]*)|')
  redis.call('HDEL', PASSES, pass_id)
  redis.call('ZREM', PASSES_ACTIVE, pass_id)
  redis.call('HDEL', ADMITTED, user)
  left = left + 1
end
if left > 0 then
  redis.call('HSET', QUEUE, 'dirty', '1')
end
return {1, left > 0 and 1 or 0}
