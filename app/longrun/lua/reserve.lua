-- Count a new unfinished task against its owner's cap, atomically (two creates never both squeeze in).
-- KEYS[1] the owner's zset of unfinished task ids, scored by when their lease ends (a dead replica's
-- entries lapse by themselves); ARGV[1] task id, ARGV[2] cap, ARGV[3] lease ms
-- returns 1 (counted) or 0 (the owner is at the cap)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 4)
return 1
