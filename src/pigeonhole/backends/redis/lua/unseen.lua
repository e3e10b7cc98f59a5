-- ARGV: prefix, now, user. The unseen count: the unread entries less the seen
-- ones, each set less its expired members. The expired ones are found among
-- the expired unread entries, which are few: purge removes them.
local uid = ARGV[3]
local unread = redis.call('ZCARD', ukey(uid, 'unread'))
local seen = redis.call('ZCARD', ukey(uid, 'seen'))
for _, id in ipairs(redis.call('ZRANGEBYSCORE', ukey(uid, 'unread_exp'), '-inf', NOW_S)) do
  unread = unread - 1
  if redis.call('ZSCORE', ukey(uid, 'seen'), id) then seen = seen - 1 end
end
return unread - seen
