-- Give a lease back (shutdown): the task is claimable at once. KEYS[1] task hash; ARGV[1] replica.
if redis.call('HGET', KEYS[1], 'lease_owner') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'lease_owner', '', 'lease_until', 0)
return 1
