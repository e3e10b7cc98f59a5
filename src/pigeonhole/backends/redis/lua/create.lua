-- ARGV: prefix, now, content field/value pairs. The content of a send,
-- flagged as sending (with its start time) so purge leaves it alone while
-- recipients are added; it is an orphan until the first of them arrives.
local mid = redis.call('INCR', P .. ':ids:message')
local fields = {}
for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', mkey(mid), 'refs', 0, 'sending', NOW_S, unpack(fields))
redis.call('SADD', P .. ':orphans', mid)
return mid
