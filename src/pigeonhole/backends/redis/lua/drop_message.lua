-- ARGV: prefix, now, message id. Delete a content and its index members.
redis.call('DEL', mkey(ARGV[3]))
redis.call('SREM', gkey('orphans'), ARGV[3])
redis.call('ZREM', gkey('sending'), ARGV[3])
return 1
