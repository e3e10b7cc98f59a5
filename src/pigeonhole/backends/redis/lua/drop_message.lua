-- ARGV: prefix, now, message id. Delete a content and its index members.
drop_copy(ARGV[3])
redis.call('SREM', gkey('orphans'), ARGV[3])
redis.call('ZREM', gkey('sending'), ARGV[3])
return 1
