-- End a task: by its lease holder (completed/failed), or by anyone (cancelled) while it is unfinished.
-- A finished task never changes again.
-- KEYS[1] task hash, KEYS[2] pending input requests, KEYS[3] answers
-- ARGV[1] replica ('' = anyone), ARGV[2] unused, ARGV[3] now ms, ARGV[4] status, ARGV[5] result JSON,
-- ARGV[6] error JSON, ARGV[7] status message
-- returns the task's owner when this call ended it (for its index entries), else 0
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'completed' or status == 'failed' or status == 'cancelled' then
  return 0
end
if ARGV[1] ~= '' and redis.call('HGET', KEYS[1], 'lease_owner') ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'status', ARGV[4], 'result', ARGV[5], 'error', ARGV[6], 'msg', ARGV[7],
  'lease_owner', '', 'lease_until', 0, 'updated', ARGV[3])
for i = 1, 3 do
  redis.call('PEXPIRE', KEYS[i], redis.call('HGET', KEYS[1], 'ttl'))
end
return redis.call('HGET', KEYS[1], 'owner')
