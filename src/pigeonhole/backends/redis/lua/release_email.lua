-- ARGV: prefix, now, claim time, entry ids. Take back claims made at that
-- time (an email that could not be sent), so a retry or a digest sends it.
local released = {}
for i = 4, #ARGV do
  local id = ARGV[i]
  local e = entry_fields(id, 'u', 'e', 'r', 'a', 'c', 'o')
  if e[1] and e[2] == ARGV[3] then
    redis.call('HDEL', ekey(id), 'e')
    if not e[3] and not e[4] and not e[6] then redis.call('ZADD', gkey('unmailed'), e[5], id) end
    released[#released + 1] = id
  end
end
return released
