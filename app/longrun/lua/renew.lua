-- Extend the caller's lease on an unfinished task and read the task (its runner's check-in).
-- KEYS[1] task hash, KEYS[2] pending input requests, KEYS[3] answers
-- ARGV[1] replica, ARGV[2] lease ms (the task's ttl is its own 'ttl' field)
-- returns the task as read.lua does; a finished task unrenewed; false when the lease is not the caller's
local status = redis.call('HGET', KEYS[1], 'status')
if not status then
  return false
end
if status == 'completed' or status == 'failed' or status == 'cancelled' then
  return {redis.call('HGETALL', KEYS[1]), {}}
end
if redis.call('HGET', KEYS[1], 'lease_owner') ~= ARGV[1] then
  return false
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], 'lease_until', now + tonumber(ARGV[2]))
for i = 1, 3 do
  redis.call('PEXPIRE', KEYS[i], redis.call('HGET', KEYS[1], 'ttl'))
end
return {redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2])}
