-- ARGV: prefix, now, created, expires|'', user, content id, entry id, then
-- content field/value pairs. One message for one user: the content and its
-- single entry together, under the ids reserved for them. Returns the ids and
-- whether a listing flagged the inbox ``noted`` since the last add (see
-- list.lua), taking the flag.
local x = ARGV[4] ~= '' and ARGV[4] or false
local mid, id = ARGV[6], ARGV[7]
local fields = {}
for i = 8, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', mkey(mid), 'refs', 1, unpack(fields))
if x then
  redis.call('HSET', ekey(id), 'u', ARGV[5], 'm', mid, 'c', ARGV[3], 'x', x)
else
  redis.call('HSET', ekey(id), 'u', ARGV[5], 'm', mid, 'c', ARGV[3])
end
local m = redis.call('HMGET', mkey(mid), 'thread', 'from_user_id')
local saved = m[1] and fold(id, ARGV[5], m[1], m[2])
index_new(id, ARGV[5], x, ARGV[3])
if saved then reindex(id, ARGV[5], false, false, x) end
redis.call('HSET', mkey(mid), 'ranges', id .. ':1')
return {mid, id, redis.call('DEL', ukey(ARGV[5], 'noted'))}
