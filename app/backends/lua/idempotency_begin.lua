-- Begin an idempotent call, atomically (exactly one concurrent caller gets 'acquired').
--
-- KEYS[1]  the record: a hash {fp, state = 'running' | 'done', result}
-- ARGV[1]  fingerprint of the request
-- ARGV[2]  lock ttl in ms: a crashed worker's lock frees itself
-- returns  {status} or {'completed', result}

local record = redis.call('HMGET', KEYS[1], 'fp', 'state', 'result')
if not record[1] then
  redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'state', 'running')
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {'acquired'}
end
if record[1] ~= ARGV[1] then
  return {'mismatch'}
end
if record[2] == 'done' then
  return {'completed', record[3]}
end
return {'in_progress'}
