-- ARGV: prefix, now, chunk. Delete one chunk of expired entries.
local ids = redis.call(
  'ZRANGEBYSCORE', gkey('expiring'), '-inf', NOW_S, 'LIMIT', 0, tonumber(ARGV[3]))
local removed = 0
for _, id in ipairs(ids) do
  if remove_entry(id) then removed = removed + 1 end
end
return {#ids, removed}
