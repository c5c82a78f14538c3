-- Token bucket: refill, then take each request's `cost` tokens in turn if there are that many, in one atomic step.
--
-- KEYS[1]    the bucket: a hash {tokens, ts}; ts in ms on the Redis clock
-- ARGV[1]    capacity           (tokens, > 0, fractions allowed)
-- ARGV[2]    refill_per_second  (tokens per second, > 0, fractions allowed)
-- ARGV[3]    lease wanted: tokens the caller would like to take ahead, for calls it expects soon (>= 0)
-- ARGV[4..]  cost of each request decided in this call (tokens, >= 0), in arrival order
-- returns    the lease granted (an integer), then for each cost three items: allowed 1|0, remaining
--            after it (a string: Lua numbers are truncated to integers in replies), retry_after_ms
--
-- Several requests in one call (app/backends/leasing.py coalesces the callers that arrive
-- while a round trip for the same bucket is in flight) are decided exactly as the same requests
-- sent one by one at the same instant would be: a denied request takes nothing, a later cheaper
-- one may still fit. The time is Redis' own (TIME), never the caller's: replicas' clocks may
-- disagree, Redis has one.
--
-- A lease only ever comes out of the top half of the bucket (what stays is at least capacity / 2),
-- so near the limit every request is decided here, one by one. Leased tokens leave the bucket now:
-- whatever a replica does with them, no window ever admits more than capacity + refill x its length. (Redis >= 5 replicates a script's effects, not the script, so TIME
-- before a write is allowed.) Same math as MemoryRateLimitStore in memory/rate_limit.py; keep the two in step.

local YEAR_MS = 31536000000  -- cap on waits and TTLs: keeps them integers Redis accepts, whatever the rate

local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])

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

local lease_wanted = tonumber(ARGV[3])
local reply = {0}
for i = 4, #ARGV do
  local cost = tonumber(ARGV[i])
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
  reply[#reply + 1] = allowed
  reply[#reply + 1] = string.format('%.17g', tokens)
  reply[#reply + 1] = retry_after
end

if lease_wanted > 0 then
  local lease = math.min(lease_wanted, math.floor(tokens - capacity / 2))
  if lease > 0 then
    tokens = tokens - lease
    reply[1] = lease
  end
end

redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts', string.format('%.17g', now))
-- Gone once full again: an absent bucket reads as full, so nothing is lost and idle keys cost no memory.
redis.call('PEXPIRE', KEYS[1], math.min(YEAR_MS, math.ceil((capacity - tokens) * 1000 / rate)) + 1000)

return reply
