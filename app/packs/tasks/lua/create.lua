-- Create a task: refuse past the tenant's limit or an existing id; history entry first.
-- KEYS: task hash, tenant index, history stream. ARGV: max tasks, order key, task JSON, event JSON.
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[1]) then return {'limit'} end
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[3]) == 1 then return {'exists'} end
redis.call('XADD', KEYS[3], '1-0', 'e', ARGV[4])
redis.call('HSET', KEYS[1], 'v', '1', 'd', ARGV[3])
redis.call('ZADD', KEYS[2], 0, ARGV[2])
return {'ok'}
