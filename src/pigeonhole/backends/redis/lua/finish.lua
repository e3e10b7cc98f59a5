-- ARGV: prefix, now, message id. The send is over.
redis.call('HDEL', mkey(ARGV[3]), 'sending')
redis.call('ZREM', gkey('sending'), ARGV[3])
local refs = tonumber(redis.call('HGET', mkey(ARGV[3]), 'refs') or '0')
if refs <= 0 then redis.call('SADD', gkey('orphans'), ARGV[3]) end
return refs
