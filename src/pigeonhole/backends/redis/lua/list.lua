-- ARGV: prefix, now, user, state, cursor, limit, budget, since|'', before|'',
-- tag|'', reason|'', noted ttl|'', levels... Walk the zset newest first from the
-- cursor, skipping what the filters refuse, until ``limit`` rows or ``budget``
-- members scanned; return the cursor to go on from ('' at the end) and the rows
-- as one JSON array (see below). With a ttl,
-- a listing that finds nothing flags the inbox ``noted`` for that many seconds:
-- a page may note it empty, so the next add must renew the user's version
-- (see add.lua).
local uid, state, cursor = ARGV[3], ARGV[4], ARGV[5]
-- The user's sorted sets each state walks ("claim": unread, marked read as
-- read); "all" walks two, merged newest first (see page()).
local zsets = ({
  unread = {'unread'}, claim = {'unread'}, read = {'read'}, all = {'unread', 'read'},
  archived = {'archived'}, saved = {'saved'},
})[state]
for i, name in ipairs(zsets) do zsets[i] = ukey(uid, name) end
local limit, budget = tonumber(ARGV[6]), tonumber(ARGV[7])
local since = ARGV[8] ~= '' and tonumber(ARGV[8]) or false
local before = ARGV[9] ~= '' and tonumber(ARGV[9]) or false
local tag = ARGV[10] ~= '' and (' ' .. ARGV[10] .. ' ') or false
local reason = ARGV[11] ~= '' and ARGV[11] or false
local noted_ttl = ARGV[12] ~= '' and ARGV[12] or false
local levels = false
if #ARGV > 12 then
  levels = {}
  for i = 13, #ARGV do levels[ARGV[i]] = true end
end
-- "claim" is the unread state, each row marked read as it is read: the request
-- path's claim in one step. Its rows carry the entry as it was (unread).
local claim = state == 'claim'
local function in_state(r, a, s)
  if state == 'unread' or claim then return not r and not a end
  if state == 'read' then return r and not a end
  if state == 'all' then return not a end
  if state == 'saved' then return s end
  return a
end
local function content_ok(m)
  if not levels and not tag and not reason then return true end
  local level, tags, why = '', '', ''
  for i = 1, #m, 2 do
    if m[i] == 'level' then
      level = m[i + 1]
    elseif m[i] == 'extra_tags' then
      tags = m[i + 1]
    elseif m[i] == 'reason' then
      why = m[i + 1]
    end
  end
  if levels and not levels[level] then return false end
  if tag and not string.find(' ' .. tags .. ' ', tag, 1, true) then return false end
  if reason and why ~= reason then return false end
  return true
end
-- The page goes back as one JSON string, not as nested replies: a page of 20
-- rows is some 560 reply elements, which the client parses one by one in
-- Python, at several times the cost of the script itself. Unset fields
-- (false) become null, which decodes to None, as a nested reply's nil does.
local function json_fields(e)
  local out = {}
  for i = 1, #ENTRY_FIELDS do out[i] = e[i] or cjson.null end
  return out
end
-- The next ``want`` ids below the cursor, newest first. Of two sets, ``want``
-- from each, merged: those past the first ``want`` are read again next round.
local function page(want)
  local a = redis.call('ZREVRANGEBYSCORE', zsets[1], cursor, '-inf', 'LIMIT', 0, want)
  if not zsets[2] then return a end
  local b = redis.call('ZREVRANGEBYSCORE', zsets[2], cursor, '-inf', 'LIMIT', 0, want)
  local ids, i, j = {}, 1, 1
  while #ids < want and (a[i] or b[j]) do
    if a[i] and (not b[j] or tonumber(a[i]) > tonumber(b[j])) then
      ids[#ids + 1], i = a[i], i + 1
    else
      ids[#ids + 1], j = b[j], j + 1
    end
  end
  return ids
end
local rows, scanned = {}, 0
while #rows < limit and scanned < budget do
  local want = math.min(budget - scanned, math.max(limit - #rows, 10))
  local ids = page(want)
  for _, id in ipairs(ids) do
    scanned = scanned + 1
    cursor = '(' .. id
    local e = read_entry(id)
    if e[1] == uid and visible(e[7]) and in_state(e[4], e[5], e[9]) then
      local c = tonumber(e[3])
      if (not since or c >= since) and (not before or c < before) then
        local m = redis.call('HGETALL', mkey(e[2]))
        if #m > 0 and content_ok(m) then
          rows[#rows + 1] = {id, json_fields(e), m}
          if claim then
            own(id)
            redis.call('HSET', ekey(id), 'r', NOW_S)
            reindex(id, uid, NOW_S, false, e[7])
          end
          if #rows >= limit then break end
        end
      end
    end
  end
  if #ids < want then
    cursor = ''
    break
  end
end
if noted_ttl and #rows == 0 then redis.call('SET', ukey(uid, 'noted'), 1, 'EX', noted_ttl) end
-- cjson writes an empty table as an object: an empty page is written here.
return {cursor, #rows > 0 and cjson.encode(rows) or '[]'}
