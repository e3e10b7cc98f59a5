-- ARGV: prefix, now, user, operation, argument, '1' if strict, '1' if a dry
-- run, entry ids. Strict, check that every id is one of the user's visible
-- entries before changing any: all or nothing. Lenient, skip the others. A dry
-- run returns what would change and writes nothing.
local uid, op, arg = ARGV[3], ARGV[4], ARGV[5]
local lenient, dry = ARGV[6] ~= '1', ARGV[7] == '1'
local ids, states, missing = {}, {}, {}
for i = 8, #ARGV do
  local id = ARGV[i]
  local e = entry_fields(id, 'u', 'r', 'a', 'x', 's', 'o')
  if e[1] == uid and visible(e[4]) and not e[6] then
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
if op == 'delete' then
  -- A saved entry is never deleted: strict, nothing is; lenient, it is skipped.
  local saved, kept, kept_states = {}, {}, {}
  for i, id in ipairs(ids) do
    if states[i][5] then
      saved[#saved + 1] = id
    else
      kept[#kept + 1] = id
      kept_states[#kept] = states[i]
    end
  end
  if #saved > 0 and not lenient then return {'saved', saved} end
  ids, states = kept, kept_states
end
-- The field each operation sets or clears.
local field = ({
  read = 'r', unread = 'r', archive = 'a', unarchive = 'a', expire = 'x', save = 's', unsave = 's',
})[op]
local changed = {}
for i, id in ipairs(ids) do
  local r, a, x, s = states[i][2], states[i][3], states[i][4], states[i][5]
  local hit = true
  if op == 'read' then
    hit, r = not r, r or NOW_S
  elseif op == 'unread' then
    hit, r = r and true or false, false
  elseif op == 'archive' then
    hit, a = not a, a or NOW_S
  elseif op == 'unarchive' then
    hit, a = a and true or false, false
  elseif op == 'expire' then
    x = arg
  elseif op == 'save' then
    hit, s = not s, s or NOW_S
  elseif op == 'unsave' then
    hit, s = s and true or false, false
  end
  if hit then changed[#changed + 1] = id end
  if hit and not dry then
    if op == 'delete' then
      remove_entry(id)
    else
      local value = ({r = r, a = a, x = x, s = s})[field]
      own(id)
      if value then
        redis.call('HSET', ekey(id), field, value)
      else
        redis.call('HDEL', ekey(id), field)
      end
      reindex(id, uid, r, a, x)
    end
  end
end
return {'ok', changed}
