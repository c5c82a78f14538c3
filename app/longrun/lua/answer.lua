-- Keep the client's answers to requests still pending, drop those requests; the last answer turns the
-- task back to working. Answers to anything not pending are ignored.
-- KEYS[1] task hash, KEYS[2] pending input requests, KEYS[3] answers
-- ARGV[1] unused, ARGV[2] now ms, ARGV[3..] key, answer JSON pairs
if redis.call('HGET', KEYS[1], 'status') ~= 'input_required' then
  return 0
end
local answered = 0
for i = 3, #ARGV, 2 do
  if redis.call('HDEL', KEYS[2], ARGV[i]) == 1 then
    redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
    answered = answered + 1
  end
end
if answered == 0 then
  return 0
end
if redis.call('HLEN', KEYS[2]) == 0 then
  redis.call('HSET', KEYS[1], 'status', 'working')
end
redis.call('HSET', KEYS[1], 'updated', ARGV[2])
for i = 1, 3 do
  redis.call('PEXPIRE', KEYS[i], redis.call('HGET', KEYS[1], 'ttl'))
end
return answered
