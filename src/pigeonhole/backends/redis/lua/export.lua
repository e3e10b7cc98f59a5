-- ARGV: prefix, now, user, thread|'', then entry ids. Without ids, return
-- the ids of every entry stored for the user (of the one thread, when given),
-- folded and expired ones included, oldest first; with ids, return those
-- entries of the user, as listings do.
local uid, thread = ARGV[3], ARGV[4] ~= '' and ARGV[4] or false
if #ARGV > 4 then
  local rows = {}
  for i = 5, #ARGV do
    local id = ARGV[i]
    local e = read_entry(id)
    if e[1] == uid then rows[#rows + 1] = {id, e, redis.call('HGETALL', mkey(e[2]))} end
  end
  return rows
end
if thread then return redis.call('ZRANGE', hkey(uid, thread), 0, -1) end
local ids, known = {}, {}
local function take(list)
  for _, id in ipairs(list) do
    if not known[id] then ids[#ids + 1], known[id] = tonumber(id), true end
  end
end
for _, name in ipairs(STATES) do take(redis.call('ZRANGE', ukey(uid, name), 0, -1)) end
for _, name in ipairs(redis.call('HKEYS', ukey(uid, 'threads'))) do
  take(redis.call('ZRANGE', hkey(uid, name), 0, -1))
end
table.sort(ids)
for i, id in ipairs(ids) do ids[i] = string.format('%d', id) end
return ids
