-- ARGV: prefix, now, oldest live send start, message ids. Delete contents
-- left without entries, except those a send still in progress is filling.
local removed = 0
for i = 4, #ARGV do
  local mid = ARGV[i]
  local m = redis.call('HMGET', mkey(mid), 'refs', 'sending')
  if m[1] and tonumber(m[1]) > 0 then
    redis.call('SREM', gkey('orphans'), mid)
  elseif not m[2] or tonumber(m[2]) < tonumber(ARGV[3]) then
    removed = removed + redis.call('DEL', mkey(mid))
    redis.call('SREM', gkey('orphans'), mid)
    redis.call('ZREM', gkey('sending'), mid)
  end
end
return removed
