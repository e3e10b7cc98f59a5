-- ARGV: prefix, now, then (user, thread, entry id) for each new row. For each,
-- the newest older entry of the user's thread history, if it is folded: the
-- row the new entry replaced, with its content.
local rows = {}
for i = 3, #ARGV, 3 do
  local uid, id = ARGV[i], ARGV[i + 2]
  local older = redis.call('ZREVRANGEBYSCORE', hkey(uid, ARGV[i + 1]), '(' .. id, '-inf', 'LIMIT', 0, 1)
  if older[1] then
    local e = read_entry(older[1])
    if e[1] == uid and e[10] then
      rows[#rows + 1] = {id, older[1], e, redis.call('HGETALL', mkey(e[2]))}
    end
  end
end
return rows
