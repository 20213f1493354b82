-- Included (`--@include _event_keys`) at the top of every event script: binds KEYS in
-- booking.inventory.keys.SCRIPT_KEYS order. The only place a script reads KEYS, so every key it
-- touches carries the event's hash tag (tests/lua/test_cluster_slots.py).
local META = KEYS[1]
local INV = KEYS[2]
local SEATS = KEYS[3]
local HOLDS = KEYS[4]
local EXPIRY = KEYS[5]
local USERS = KEYS[6]
local IDEM = KEYS[7]
local PENDING = KEYS[8]
local PASSES = KEYS[9]
local PASSES_ACTIVE = KEYS[10]
local FEED = KEYS[11]
