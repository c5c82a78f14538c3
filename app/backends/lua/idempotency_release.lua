-- Drop an in-progress lock so a retry may run, only if it is still ours; completed records stay.
--
-- KEYS[1]  the record (see idempotency_begin.lua)
-- ARGV[1]  fingerprint
-- returns  1 released, 0 not ours / not running

local record = redis.call('HMGET', KEYS[1], 'fp', 'state')
if record[1] == ARGV[1] and record[2] == 'running' then
  return redis.call('DEL', KEYS[1])
end
return 0
