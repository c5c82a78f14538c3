-- Record the result of an idempotent call, unless the key now belongs to another fingerprint.
-- Stored even when our lock expired meanwhile: the work was done, and a retry should see it.
--
-- KEYS[1]  the record (see idempotency_begin.lua)
-- ARGV[1]  fingerprint, ARGV[2] result, ARGV[3] ttl in ms
-- returns  1 stored, 0 not ours

local fp = redis.call('HGET', KEYS[1], 'fp')
if fp and fp ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'state', 'done', 'result', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
