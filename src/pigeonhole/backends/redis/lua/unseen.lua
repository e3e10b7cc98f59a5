-- ARGV: prefix, now, user. The unseen count: the unseen set's size less its
-- expired members, found among the expired unread ones (few: purge removes them).
local uid = ARGV[3]
local n = redis.call('ZCARD', ukey(uid, 'unseen'))
for _, id in ipairs(redis.call('ZRANGEBYSCORE', ukey(uid, 'unread_exp'), '-inf', NOW_S)) do
  if redis.call('ZSCORE', ukey(uid, 'unseen'), id) then n = n - 1 end
end
return n
