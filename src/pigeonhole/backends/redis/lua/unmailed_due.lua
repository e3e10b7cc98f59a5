-- ARGV: prefix, now, entry ids (from the group's ``unmailed`` index). Those
-- still unread, unarchived, visible and not emailed, with their contents.
local rows = {}
for i = 3, #ARGV do
  local id = ARGV[i]
  local e = read_entry(id)
  if e[1] and not e[4] and not e[5] and not e[6] and visible(e[7]) then
    local m = redis.call('HGETALL', mkey(e[2]))
    if #m > 0 then rows[#rows + 1] = {id, e, m} end
  end
end
return rows
