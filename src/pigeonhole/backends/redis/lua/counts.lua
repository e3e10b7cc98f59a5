-- ARGV: prefix, now, user. The tabs of an inbox page: unread as count()
-- reads it, then every visible entry in and out of the archive, then the saved ones.
local uid = ARGV[3]
local result = {
  redis.call('ZCARD', ukey(uid, 'unread'))
    - redis.call('ZCOUNT', ukey(uid, 'unread_exp'), '-inf', NOW_S),
}
-- "all" is the unread and the read sets together.
for _, names in ipairs({{'unread', 'read'}, {'archived'}, {'saved'}}) do
  local n = 0
  for _, name in ipairs(names) do
    for _, id in ipairs(redis.call('ZRANGE', ukey(uid, name), 0, -1)) do
      if visible(redis.call('HGET', ekey(id), 'x')) then n = n + 1 end
    end
  end
  result[#result + 1] = n
end
return result
