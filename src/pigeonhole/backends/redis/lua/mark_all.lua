-- ARGV: prefix, now, user, highest id, created watermark|'', cursor, chunk,
-- '1' if a dry run, '1' to mark seen instead of read. Mark read (or seen) one
-- chunk of the user's unread (and, for seen, unseen) entries, oldest first; a
-- dry run only returns them.
local uid, before = ARGV[3], ARGV[5] ~= '' and tonumber(ARGV[5]) or false
local dry, seen = ARGV[8] == '1', ARGV[9] == '1'
local ids = redis.call('ZRANGEBYSCORE', ukey(uid, 'unread'),
  ARGV[6], ARGV[4], 'LIMIT', 0, tonumber(ARGV[7]))
local changed = {}
for _, id in ipairs(ids) do
  local e = entry_fields(id, 'c', 'x', 'r', 'a', 'n')
  if visible(e[2]) and not e[3] and not e[4] and not (seen and e[5])
      and (not before or tonumber(e[1]) <= before) then
    if seen or not dry then own(id) end
    if seen then
      redis.call('HSET', ekey(id), 'n', NOW_S)
      redis.call('ZADD', ukey(uid, 'seen'), id, id)
      touch(uid)
    elseif not dry then
      redis.call('HSET', ekey(id), 'r', NOW_S)
      reindex(id, uid, NOW_S, false, e[2])
    end
    changed[#changed + 1] = id
  end
end
return {#ids, ids[#ids] or '', changed}
