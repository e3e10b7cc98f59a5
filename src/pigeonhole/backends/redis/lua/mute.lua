-- ARGV: prefix, now, user, thread, '1' to mute ('' to unmute). Return 1 if
-- that changed anything.
local key = ukey(ARGV[3], 'muted')
if ARGV[5] == '1' then return redis.call('SADD', key, ARGV[4]) end
return redis.call('SREM', key, ARGV[4])
