-- Take over an unfinished task whose lease lapsed (its replica died or gave it back).
-- KEYS[1] task hash, KEYS[2] pending input requests, KEYS[3] answers
-- ARGV[1] replica, ARGV[2] lease ms (the task's ttl is its own 'ttl' field)
-- returns the task as read.lua does, or 'gone' (expired or finished: drop it from the index) or 'leased'
local record = redis.call('HMGET', KEYS[1], 'status', 'lease_until')
local status = record[1]
if not status or status == 'completed' or status == 'failed' or status == 'cancelled' then
  return 'gone'
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if tonumber(record[2] or 0) >= now then
  return 'leased'
end
redis.call('HSET', KEYS[1], 'lease_owner', ARGV[1], 'lease_until', now + tonumber(ARGV[2]))
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
for i = 1, 3 do
  redis.call('PEXPIRE', KEYS[i], redis.call('HGET', KEYS[1], 'ttl'))
end
return {redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2])}
