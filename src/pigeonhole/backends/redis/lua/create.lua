-- ARGV: prefix, now, content id|'', content id floor, content field/value
-- pairs. The content of a send, under the id reserved for it or a new one,
-- flagged as sending (with its start time, in the ``sending`` index too) so
-- purge leaves it alone while recipients are added, and takes the send back
-- should it never finish; it is an orphan until the first recipient arrives.
local mid = ARGV[3] ~= '' and ARGV[3] or next_ids('message', 1, ARGV[4])
local fields = {}
for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', mkey(mid), 'refs', 0, 'sending', NOW_S, unpack(fields))
redis.call('SADD', gkey('orphans'), mid)
redis.call('ZADD', gkey('sending'), NOW_S, mid)
return mid
