-- ARGV: prefix, now, message id, first entry id, count. Take back a failed
-- send's entries (those still pointing at its content), then the content.
local mid, first = ARGV[3], tonumber(ARGV[4])
local removed = 0
for i = 0, tonumber(ARGV[5]) - 1 do
  local id = string.format('%d', first + i)
  if entry_fields(id, 'm')[1] == mid then
    remove_entry(id)
    removed = removed + 1
  end
end
return removed
