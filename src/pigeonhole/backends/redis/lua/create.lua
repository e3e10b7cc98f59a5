-- ARGV: prefix, now, content id, content field/value pairs. The group's copy
-- of a send's content, for a send that reached nobody: see copy_content().
local fields = {}
for i = 4, #ARGV do fields[#fields + 1] = ARGV[i] end
copy_content(ARGV[3], fields)
return ARGV[3]
