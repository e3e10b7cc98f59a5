-- ARGV: prefix, now, user, entry id.
local id = ARGV[4]
local e = read_entry(id)
if e[1] ~= ARGV[3] or not visible(e[7]) or e[10] then return false end
local m = redis.call('HGETALL', mkey(e[2]))
if #m == 0 then return false end
return {id, e, m}
