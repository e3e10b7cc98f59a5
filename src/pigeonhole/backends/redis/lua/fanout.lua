-- ARGV: prefix, now, message id, created, expires|'', first entry id,
-- thread|'', how many content field/value pairs, the pairs, then user ids:
-- one chunk of a send's recipients in this slot group, with consecutive entry
-- ids from the first. A user who muted the thread gets nothing (the id
-- reserved for them stays unused), the others' rows of the thread fold into
-- their new entries. Entry ids were reserved by the caller, so a failed send
-- knows which ids to take back; an id already written is skipped, so running
-- a chunk twice writes it once.
local mid, c = ARGV[3], ARGV[4]
local x = ARGV[5] ~= '' and ARGV[5] or false
local first = tonumber(ARGV[6])
local thread = ARGV[7] ~= '' and ARGV[7] or false
local users = 9 + 2 * tonumber(ARGV[8])
local fields = {}
for i = 9, users - 1 do fields[#fields + 1] = ARGV[i] end
copy_content(mid, fields)
local sender = thread and redis.call('HGET', mkey(mid), 'from_user_id')
local added, resaved = 0, {}
local shared = {unmailed = {}, expiring = {}}
for i = users, #ARGV do
  local id = string.format('%d', first + i - users)
  local uid = ARGV[i]
  if redis.call('EXISTS', ekey(id)) == 0
      and not (thread and redis.call('SISMEMBER', ukey(uid, 'muted'), thread) == 1) then
    if x then
      redis.call('HSET', ekey(id), 'u', uid, 'm', mid, 'c', c, 'x', x)
    else
      redis.call('HSET', ekey(id), 'u', uid, 'm', mid, 'c', c)
    end
    local saved = thread and fold(id, uid, thread, sender)
    index_new(id, uid, x, c, shared)
    if saved then resaved[#resaved + 1] = {id, uid} end
    added = added + 1
  end
end
add_shared(shared)
-- A row that stays saved leaves the indexes purge walks.
for _, row in ipairs(resaved) do reindex(row[1], row[2], false, false, x) end
-- Remember the ids this send reserved here, so the group's entries of a message can be found.
local ranges = redis.call('HGET', mkey(mid), 'ranges')
local range = ARGV[6] .. ':' .. (#ARGV - users + 1)
redis.call('HSET', mkey(mid), 'ranges', ranges and (ranges .. ',' .. range) or range)
if added > 0 and redis.call('HINCRBY', mkey(mid), 'refs', added) > 0 then
  redis.call('SREM', gkey('orphans'), mid)
end
return added
