-- ARGV: prefix, now, created cutoff, offset, limit. Unread entries not yet
-- emailed and created at or before the cutoff, oldest first.
local ids = redis.call('ZRANGEBYSCORE', gkey('unmailed'), '-inf', ARGV[3],
  'LIMIT', tonumber(ARGV[4]), tonumber(ARGV[5]))
local rows = {}
for _, id in ipairs(ids) do
  local e = read_entry(id)
  if e[1] and not e[4] and not e[5] and not e[6] and visible(e[7]) then
    local m = redis.call('HGETALL', mkey(e[2]))
    if #m > 0 then rows[#rows + 1] = {id, e, m} end
  end
end
return {#ids, rows}
