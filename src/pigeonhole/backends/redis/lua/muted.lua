-- ARGV: prefix, now, thread, then the user ids of this slot group as one JSON
-- array of strings. Return those of them who muted the thread: a send asks
-- once per group and chunk before it reports its count, where asking with one
-- SISMEMBER per recipient cost the sending process more than the send did.
local thread = ARGV[3]
local muted = {}
for _, uid in ipairs(cjson.decode(ARGV[4])) do
  if redis.call('SISMEMBER', ukey(uid, 'muted'), thread) == 1 then muted[#muted + 1] = uid end
end
return muted
