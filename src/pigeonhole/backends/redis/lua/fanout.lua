-- ARGV: prefix, now, message id, created, expires|'', first entry id,
-- thread|'', how many content field/value pairs, the pairs, then the user ids
-- as one JSON array of strings: one chunk of a send's recipients in this slot
-- group, with consecutive entry ids from the first. One argument costs Redis
-- less to take in than one per user, and the sending process far less to
-- pack. A user who muted the thread gets nothing (the id
-- reserved for them stays unused), the others' rows of the thread fold into
-- their new entries. Entry ids were reserved by the caller, so a failed send
-- knows which ids to take back. A chunk is written whole or not at all, and
-- its range of ids is recorded in the content's ``ranges`` as it is: a chunk
-- already recorded is not written again, so running it twice writes it once
-- (and never brings back an entry its user deleted meanwhile).
--
-- This is the hot path of a send, so each recipient costs as few calls as the
-- layout allows. A send of no thread and no expiry writes no entry hash: the
-- part's users go in one list and its range in ``ranges`` (see plain()), and
-- each recipient costs one ZADD, to the user's ``unread`` set: the part joins
-- the group's digest queue as one member of ``unmailed_parts`` (see
-- unmailed_after.lua), not one per entry. Nor does such an entry bump the user's change
-- counter: it grows the inbox, whose size state() counts, so the version moves
-- all the same.
local mid, c = ARGV[3], ARGV[4]
local x = ARGV[5] ~= '' and ARGV[5] or false
local first = tonumber(ARGV[6])
local thread = ARGV[7] ~= '' and ARGV[7] or false
local users = 9 + 2 * tonumber(ARGV[8])
local uids = cjson.decode(ARGV[users])
local range = ARGV[6] .. ':' .. #uids
local ranges = redis.call('HGET', mkey(mid), 'ranges')
if ranges and string.find(',' .. ranges .. ',', ',' .. range .. ',', 1, true) then return 0 end
local fields = {}
for i = 9, users - 1 do fields[#fields + 1] = ARGV[i] end
copy_content(mid, fields)
local sender = thread and redis.call('HGET', mkey(mid), 'from_user_id')
local added, resaved = 0, {}
local shared, gone = {unmailed = {}, expiring = {}}, {}
local hashless = not thread and not x
if hashless then
  redis.call('ZADD', gkey('ranges'), ARGV[6], range .. ':' .. mid)
  redis.call('RPUSH', pkey(ARGV[6]), unpack(uids))
end
for i, uid in ipairs(uids) do
  local id = string.format('%d', first + i - 1)
  if not (thread and redis.call('SISMEMBER', ukey(uid, 'muted'), thread) == 1) then
    if hashless then
      -- plain() finds the entry's fields, and the part stands in the digest queue for it.
      redis.call('ZADD', ukey(uid, 'unread'), id, id)
    elseif x then
      redis.call('HSET', ekey(id), 'u', uid, 'm', mid, 'c', c, 'x', x)
    else
      redis.call('HSET', ekey(id), 'u', uid, 'm', mid, 'c', c)
    end
    local saved = thread and fold(id, uid, thread, sender, gone)
    if not hashless then index_new(id, uid, x, c, shared, not thread) end
    if saved then resaved[#resaved + 1] = {id, uid} end
    added = added + 1
  end
end
write_shared('ZREM', gone)
write_shared('ZADD', shared)
if hashless then redis.call('ZADD', gkey('unmailed_parts'), c, range) end
-- A row that stays saved leaves the indexes purge walks.
for _, row in ipairs(resaved) do reindex(row[1], row[2], false, false, x) end
-- Remember the ids this send reserved here, so the group's entries of a message can be found.
redis.call('HSET', mkey(mid), 'ranges', ranges and (ranges .. ',' .. range) or range)
if added > 0 and redis.call('HINCRBY', mkey(mid), 'refs', added) > 0 then
  redis.call('SREM', gkey('orphans'), mid)
end
return added
