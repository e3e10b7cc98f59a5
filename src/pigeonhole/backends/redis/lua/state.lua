-- ARGV: prefix, now, user. The inbox in brief: the unread count, the highest
-- unread level, the unseen count, the user's change counter and time, the newest ids, and how
-- many entries (anyone's) have expired, since expiry changes lists unwritten.
local uid = ARGV[3]
local unread, top, unseen = 0, false, 0
for _, id in ipairs(redis.call('ZRANGE', ukey(uid, 'unread'), 0, -1)) do
  local e = entry_fields(id, 'm', 'x', 'n')
  if visible(e[2]) then
    unread = unread + 1
    if not e[3] then unseen = unseen + 1 end
    local level = tonumber(redis.call('HGET', mkey(e[1]), 'level') or '')
    if level and (not top or level > top) then top = level end
  end
end
-- A send adds entries without counting a change (see fanout.lua): the size of
-- the inbox (unread and read) tells them apart, and the newest entry's
-- creation time is a time the inbox records, as the counter's time is.
local v = redis.call('HMGET', ukey(uid, 'v'), 'n', 't')
local when = v[2] or ''
local last = newest(uid)
if last then
  local c = entry_fields(last, 'c')[1]
  if c and (when == '' or tonumber(c) > tonumber(when)) then when = c end
end
local last_archived = redis.call('ZRANGE', ukey(uid, 'archived'), -1, -1)
return {
  unread, top and string.format('%d', top) or '', v[1] or '0', when,
  last or '', last_archived[1] or '',
  redis.call('ZCOUNT', gkey('expiring'), '-inf', NOW_S), unseen,
  redis.call('ZCARD', ukey(uid, 'unread')) + redis.call('ZCARD', ukey(uid, 'read')),
}
