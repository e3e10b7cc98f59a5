-- ARGV: prefix, now, oldest live send start, message ids. Delete the group's
-- copies of contents left without entries, except those a send still in
-- progress is filling; return the ids of the copies deleted.
local removed = {}
for i = 4, #ARGV do
  local mid = ARGV[i]
  local m = redis.call('HMGET', mkey(mid), 'refs', 'sending')
  if m[1] and tonumber(m[1]) > 0 then
    redis.call('SREM', gkey('orphans'), mid)
  elseif not m[2] or tonumber(m[2]) < tonumber(ARGV[3]) then
    if drop_copy(mid) == 1 then removed[#removed + 1] = mid end
    redis.call('SREM', gkey('orphans'), mid)
    redis.call('ZREM', gkey('sending'), mid)
  end
end
return removed
