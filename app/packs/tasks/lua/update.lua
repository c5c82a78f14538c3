-- Compare-and-set update: write only if the version is still ARGV[1]; history entry first.
-- KEYS: task hash, history stream. ARGV: expected version, task JSON, event JSON.
local v = redis.call('HGET', KEYS[1], 'v')
if not v then return {'missing'} end
if v ~= ARGV[1] then return {'conflict', v} end
local nv = tostring(tonumber(v) + 1)
redis.call('XADD', KEYS[2], nv .. '-0', 'e', ARGV[3])
redis.call('HSET', KEYS[1], 'v', nv, 'd', ARGV[2])
return {'ok'}
