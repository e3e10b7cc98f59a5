-- ARGV: prefix, now, user. The unread count: the unread set's size less its
-- expired members, both O(log n), read at the same instant.
local uid = ARGV[3]
return redis.call('ZCARD', ukey(uid, 'unread'))
  - redis.call('ZCOUNT', ukey(uid, 'unread_exp'), '-inf', NOW_S)
