redis.call('DEL', mkey(ARGV[3]))
redis.call('SREM', P .. ':orphans', ARGV[3])
return 1
