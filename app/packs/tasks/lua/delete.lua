-- Compare-and-set delete: history entry, then the task and its index entry; the history expires later.
-- KEYS: task hash, tenant index, history stream. ARGV: expected version, order key, event JSON, history TTL ms.
local v = redis.call('HGET', KEYS[1], 'v')
if not v then return {'missing'} end
if v ~= ARGV[1] then return {'conflict', v} end
redis.call('XADD', KEYS[3], tostring(tonumber(v) + 1) .. '-0', 'e', ARGV[3])
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[3], ARGV[4])
return {'ok'}
