-- rate_limit.lua: token buckets for the gateway, checked and charged in one atomic step.
--
-- Every bucket named in KEYS is refilled, then the request is allowed only if EVERY bucket holds
-- `cost` tokens; only then is `cost` taken from each. A denied request charges nothing, so the
-- per-IP bucket is not drained by requests the per-user bucket refused (and vice versa).
--
-- KEYS[1..n]  bucket hashes {t = tokens (float), ts = last update, ms}; n is 1 or 2
--             (per-IP bucket, then the per-user bucket when the caller is authenticated)
-- ARGV[1]     now in milliseconds, or "" to use the Redis server clock (TIME), which keeps
--             several gateway replicas on one clock
-- ARGV[2]     cost of this request in tokens (normally 1)
-- ARGV[2i+1]  rate of bucket i, tokens per second (may be fractional)
-- ARGV[2i+2]  burst of bucket i, the most tokens it holds (a fresh bucket starts full)
--
-- Returns
--   {1, limit, remaining, reset_ms}
--       allowed; figures of the tightest bucket (fewest whole tokens left): limit = its burst,
--       remaining = whole tokens left, reset_ms = time until it is full again
--   {0, "RATE_LIMITED", i, limit, remaining, reset_ms, retry_after_ms}
--       denied by bucket i (the one that frees up last when several are empty);
--       retry_after_ms = time until it holds `cost` tokens again
--
-- Keys get PEXPIRE = time to refill completely (+1 s), so idle buckets vanish: a missing bucket
-- and a full one behave the same.
-- Redis Cluster: the two keys carry no common hash tag (an IP and a user share nothing), so there
-- the gateway calls it once per bucket, one key each (see gateway/ratelimit.py).

local now
if ARGV[1] == '' then
  local clock = redis.call('TIME')
  now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
else
  now = tonumber(ARGV[1])
end
local cost = tonumber(ARGV[2])

local tokens, stamps, rates, bursts = {}, {}, {}, {}
for i = 1, #KEYS do
  local rate = tonumber(ARGV[2 * i + 1])
  local burst = tonumber(ARGV[2 * i + 2])
  local state = redis.call('HMGET', KEYS[i], 't', 'ts')
  local t = tonumber(state[1])
  local ts = tonumber(state[2])
  if t == nil or ts == nil then
    t, ts = burst, now
  elseif now > ts then
    t = math.min(burst, t + (now - ts) * rate / 1000)
    ts = now
  end
  tokens[i], stamps[i], rates[i], bursts[i] = t, ts, rate, burst
end

local denied, retry_after = 0, 0
for i = 1, #KEYS do
  if tokens[i] < cost then
    local wait = math.ceil((cost - tokens[i]) * 1000 / rates[i])
    if wait > retry_after then
      denied, retry_after = i, wait
    end
  end
end

if denied > 0 then
  local t = tokens[denied]
  local reset = math.ceil((bursts[denied] - t) * 1000 / rates[denied])
  return {0, 'RATE_LIMITED', denied, bursts[denied], math.floor(t), reset, retry_after}
end

local tightest = 1
for i = 1, #KEYS do
  local t = tokens[i] - cost
  local full_in = math.ceil((bursts[i] - t) * 1000 / rates[i])
  redis.call('HSET', KEYS[i], 't', tostring(t), 'ts', tostring(stamps[i]))
  redis.call('PEXPIRE', KEYS[i], full_in + 1000)
  tokens[i] = t
  if math.floor(t) < math.floor(tokens[tightest]) then
    tightest = i
  end
end

local left = tokens[tightest]
local reset = math.ceil((bursts[tightest] - left) * 1000 / rates[tightest])
return {1, bursts[tightest], math.floor(left), reset}
