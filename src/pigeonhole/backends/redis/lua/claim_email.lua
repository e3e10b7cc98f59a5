-- ARGV: prefix, now, entry ids. Stamp as emailed those visible entries not
-- stamped yet; return them. Whoever stamps an entry first is the one to email it.
local claimed = {}
for i = 3, #ARGV do
  local id = ARGV[i]
  local e = entry_fields(id, 'u', 'e', 'x', 'o')
  if e[1] and not e[2] and visible(e[3]) and not e[4] then
    own(id)
    redis.call('HSET', ekey(id), 'e', NOW_S)
    redis.call('ZREM', gkey('unmailed'), id)
    claimed[#claimed + 1] = id
  end
end
return claimed
