-- Store a new task, leased to its creator for ARGV[1] ms from now (Redis time: one clock for the fleet).
-- KEYS[1] task hash, KEYS[2] its answers (those the creating call already carried)
-- ARGV[1] lease ms, ARGV[2] ttl ms, ARGV[3] n = how many field/value items follow, ARGV[4 .. 3+n] the
-- task's fields and values, then answer key, JSON pairs
-- returns the lease's end in ms
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease_until = now + tonumber(ARGV[1])
local n = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], unpack(ARGV, 4, 3 + n))
redis.call('HSET', KEYS[1], 'lease_until', lease_until)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if #ARGV > 3 + n then
  redis.call('HSET', KEYS[2], unpack(ARGV, 4 + n))
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
return lease_until
