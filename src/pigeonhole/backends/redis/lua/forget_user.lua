-- ARGV: prefix, now, user id, chunk. Delete one chunk of a user's entries,
-- archived or not; once none is left, the user's other keys.
local removed = 0
for _, name in ipairs(STATES) do
  local ids = redis.call('ZRANGE', ukey(ARGV[3], name), 0, tonumber(ARGV[4]) - 1)
  for _, id in ipairs(ids) do
    local found, folded = remove_entry(id)
    if found then removed = removed + 1 + folded end
    redis.call('ZREM', ukey(ARGV[3], name), id)  -- even an index member without its entry
  end
  if #ids > 0 then return {#ids, removed} end
end
for _, name in ipairs({'unread_exp', 'seen', 'saved', 'threads', 'noted'}) do redis.call('DEL', ukey(ARGV[3], name)) end
return {0, removed}
