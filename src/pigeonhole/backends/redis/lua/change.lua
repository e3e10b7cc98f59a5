-- ARGV: prefix, now, user, operation, argument, '1' if strict, entry ids.
-- Strict, check that every id is one of the user's visible entries before
-- changing any: all or nothing. Lenient, skip the others.
local uid, op, arg = ARGV[3], ARGV[4], ARGV[5]
local lenient = ARGV[6] ~= '1'
local ids, states, missing = {}, {}, {}
for i = 7, #ARGV do
  local id = ARGV[i]
  local e = redis.call('HMGET', ekey(id), 'u', 'r', 'a', 'x')
  if e[1] == uid and visible(e[4]) then
    ids[#ids + 1] = id
    states[#ids] = e
  elseif not lenient then
    missing[#missing + 1] = id
  end
end
if #missing > 0 then return {'missing', missing} end
if op == 'delete' and arg ~= '1' then
  local unread = {}
  for i, id in ipairs(ids) do
    if not states[i][2] then unread[#unread + 1] = id end
  end
  if #unread > 0 then return {'unread', unread} end
end
local changed = {}
for i, id in ipairs(ids) do
  local r, a, x = states[i][2], states[i][3], states[i][4]
  local hit = false
  if op == 'read' then
    if not r then r = NOW_S; redis.call('HSET', ekey(id), 'r', r); hit = true end
  elseif op == 'unread' then
    if r then r = false; redis.call('HDEL', ekey(id), 'r'); hit = true end
  elseif op == 'archive' then
    if not a then a = NOW_S; redis.call('HSET', ekey(id), 'a', a); hit = true end
  elseif op == 'unarchive' then
    if a then a = false; redis.call('HDEL', ekey(id), 'a'); hit = true end
  elseif op == 'expire' then
    x = arg; redis.call('HSET', ekey(id), 'x', x); hit = true
  elseif op == 'delete' then
    remove_entry(id); hit = true
  end
  if hit then
    if op ~= 'delete' then reindex(id, uid, r, a, x) end
    changed[#changed + 1] = id
  end
end
return {'ok', changed}
