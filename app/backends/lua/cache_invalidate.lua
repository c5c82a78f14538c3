-- Drop every entry registered under any of the tags, then the tag sets, atomically (an entry set
-- concurrently is either dropped or registered after: never left behind by a half-done invalidation).
--
-- KEYS[1..n]  tag sets
-- returns     how many entries existed and were deleted (one counted once, even under several tags)

local deleted = 0
for i = 1, #KEYS do
  local members = redis.call('SMEMBERS', KEYS[i])
  -- unpack() is bounded by Lua's C stack: delete in chunks.
  for j = 1, #members, 500 do
    deleted = deleted + redis.call('DEL', unpack(members, j, math.min(j + 499, #members)))
  end
  redis.call('DEL', KEYS[i])
end
return deleted
