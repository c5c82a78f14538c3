-- Token bucket: refill, then take `cost` tokens if there are that many, in one atomic step.
--
-- KEYS[1]  the bucket: a hash {tokens, ts}; ts in ms on the Redis clock
-- ARGV[1]  capacity           (tokens, > 0, fractions allowed)
-- ARGV[2]  refill_per_second  (tokens per second, > 0, fractions allowed)
-- ARGV[3]  cost               (tokens, >= 0)
-- returns  {allowed 1|0, remaining (a string: Lua numbers are truncated to integers in replies), retry_after_ms}
--
-- The time is Redis' own (TIME), never the caller's: replicas' clocks may disagree, Redis has one.
-- (Redis >= 5 replicates a script's effects, not the script, so TIME before a write is allowed.)
-- Same math as MemoryRateLimitStore in memory.py; keep the two in step.

local YEAR_MS = 31536000000  -- cap on waits and TTLs: keeps them integers Redis accepts, whatever the rate

local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])

local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + tonumber(clock[2]) / 1000

local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = capacity  -- a missing bucket is a full one (that is also why it may expire when full)
  ts = now
end
-- max(0, ...): a Redis clock stepping back (failover to a replica) refills nothing rather than draining.
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate / 1000)

local allowed = 0
local retry_after = 0
if cost <= tokens then
  allowed = 1
  tokens = tokens - cost
elseif cost > capacity then
  -- Can never fit: one full refill period, a finite back-off at the limit's own pace.
  retry_after = math.min(YEAR_MS, math.max(1, math.ceil(capacity * 1000 / rate)))
else
  retry_after = math.min(YEAR_MS, math.max(1, math.ceil((cost - tokens) * 1000 / rate)))
end

redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts', string.format('%.17g', now))
-- Gone once full again: an absent bucket reads as full, so nothing is lost and idle keys cost no memory.
redis.call('PEXPIRE', KEYS[1], math.min(YEAR_MS, math.ceil((capacity - tokens) * 1000 / rate)) + 1000)

return {allowed, string.format('%.17g', tokens), retry_after}
