--[[ queue_init: set up an event's queue in Redis from PostgreSQL (idempotent).

KEYS (every queue script, booking.inventory.keys.QUEUE_SCRIPT_KEYS order):
  1 queue  2 waiting  3 pre  4 admitted  5 passes  6 passes_active  7 inv  8 feed (channel)
ARGV:
  1 event_id  2 sale_starts_ms  3 max_concurrent  4 release_per_tick  5 pass_ttl_ms
  6 paused (0|1)  7 seed (hex)
Returns: {1, created (0|1)}
Errors: none.
Fields already present are kept (HSETNX): a live PATCH or the counters are never overwritten by a
stale copy, so any number of processes may call this at once.
]]
local QUEUE = KEYS[1]

local created = redis.call('HSETNX', QUEUE, 'event_id', ARGV[1])
redis.call('HSETNX', QUEUE, 'open', '1')
redis.call('HSETNX', QUEUE, 'sale_starts_ms', ARGV[2])
redis.call('HSETNX', QUEUE, 'max_concurrent', ARGV[3])
redis.call('HSETNX', QUEUE, 'release_per_tick', ARGV[4])
redis.call('HSETNX', QUEUE, 'pass_ttl_ms', ARGV[5])
redis.call('HSETNX', QUEUE, 'paused', ARGV[6])
redis.call('HSETNX', QUEUE, 'seed', ARGV[7])
redis.call('HSETNX', QUEUE, 'seq', '0')
return {1, created}
