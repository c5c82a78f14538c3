-- Create a task: refuse an existing id (a create with a derived id run again finds its task, even
-- at the limit), then past the tenant's limit; history entry first.
-- KEYS: task hash, tenant index, history stream. ARGV: max tasks, order key, task JSON, event JSON.
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[3]) == 1 then return {'exists'} end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[1]) then return {'limit'} end
redis.call('XADD', KEYS[3], '1-0', 'e', ARGV[4])
redis.call('HSET', KEYS[1], 'v', '1', 'd', ARGV[3])
redis.call('ZADD', KEYS[2], 0, ARGV[2])
return {'ok'}
