-- ARGV: prefix, now, read before (exclusive), chunk, '1' if expired ones count
-- as expired. Delete one chunk of entries read before the date.
local ids = redis.call(
  'ZRANGEBYSCORE', gkey('read'), '-inf', '(' .. ARGV[3], 'LIMIT', 0, tonumber(ARGV[4]))
local read, expired = 0, 0
for _, id in ipairs(ids) do
  local x = redis.call('HGET', ekey(id), 'x')
  if remove_entry(id) then
    if ARGV[5] == '1' and not visible(x) then expired = expired + 1 else read = read + 1 end
  end
end
return {#ids, read, expired}
