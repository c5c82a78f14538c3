-- Store a cache entry and register it under its tags, atomically.
--
-- KEYS[1]     the entry: a hash {v = value, t = tags as JSON} (tags kept so a tier copying it can index it)
-- KEYS[2..n]  one set per tag, holding entry key names
-- ARGV[1]     value
-- ARGV[2]     ttl in ms (> 0)
-- ARGV[3]     tags as a JSON array
--
-- A tag set lives as long as its longest-lived member (PTTL is -1 on a new set, so it gets the TTL);
-- members that expired before it linger harmlessly until then.

local ttl = tonumber(ARGV[2])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', ARGV[1], 't', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ttl)
for i = 2, #KEYS do
  redis.call('SADD', KEYS[i], KEYS[1])
  if redis.call('PTTL', KEYS[i]) < ttl then
    redis.call('PEXPIRE', KEYS[i], ttl)
  end
end
return 1
