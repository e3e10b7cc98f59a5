-- ARGV: prefix, now, user, cursor (last id given, '' to start), limit. Every
-- entry stored for the user, expired ones included, oldest first, a batch at
-- a time; return the cursor to go on from ('' at the end).
local uid, limit = ARGV[3], tonumber(ARGV[5])
local low = ARGV[4] ~= '' and ('(' .. ARGV[4]) or '-inf'
local ids = {}
for _, name in ipairs({'all', 'archived'}) do
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', ukey(uid, name), low, '+inf', 'LIMIT', 0, limit)) do
    ids[#ids + 1] = tonumber(id)
  end
end
table.sort(ids)
local rows, last = {}, ''
for i = 1, math.min(limit, #ids) do
  local id = string.format('%d', ids[i])
  last = id
  local e = read_entry(id)
  if e[1] then rows[#rows + 1] = {id, e, redis.call('HGETALL', mkey(e[2]))} end
end
return {#ids >= limit and last or '', rows}
