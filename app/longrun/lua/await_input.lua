-- The running task waits for the client: input_required with these requests (the lease holder only).
-- KEYS[1] task hash, KEYS[2] pending input requests, KEYS[3] answers
-- ARGV[1] replica, ARGV[2] unused, ARGV[3] now ms, ARGV[4] request state ('' for none), ARGV[5..] key, JSON
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'completed' or status == 'failed' or status == 'cancelled' then
  return 0
end
if redis.call('HGET', KEYS[1], 'lease_owner') ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[2])
if #ARGV > 4 then
  redis.call('HSET', KEYS[2], unpack(ARGV, 5))
end
redis.call('HSET', KEYS[1], 'status', 'input_required', 'rstate', ARGV[4], 'updated', ARGV[3])
for i = 1, 3 do
  redis.call('PEXPIRE', KEYS[i], redis.call('HGET', KEYS[1], 'ttl'))
end
return 1
