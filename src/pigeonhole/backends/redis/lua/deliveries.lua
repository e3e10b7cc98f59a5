-- ARGV: prefix, now, message id, user ids. Each user's visible, unarchived
-- entry of the message (found among the ids the send reserved, by score in
-- the user's own index) and their unread count; the content once.
local mid = ARGV[3]
local m = redis.call('HGETALL', mkey(mid))
if #m == 0 then return {{}, m} end
local low, high = false, false
for i = 1, #m, 2 do
  if m[i] == 'ranges' then
    for first, count in string.gmatch(m[i + 1], '(%d+):(%d+)') do
      first, count = tonumber(first), tonumber(count)
      if not low or first < low then low = first end
      if not high or first + count - 1 > high then high = first + count - 1 end
    end
  end
end
if not low then return {{}, m} end
low, high = string.format('%d', low), string.format('%d', high)
local rows = {}
for i = 4, #ARGV do
  local uid = ARGV[i]
  for _, name in ipairs({'unread', 'read'}) do
    for _, id in ipairs(redis.call('ZRANGEBYSCORE', ukey(uid, name), low, high)) do
      local e = read_entry(id)
      if e[2] == mid and visible(e[7]) then
        local unread = redis.call('ZCARD', ukey(uid, 'unread'))
          - redis.call('ZCOUNT', ukey(uid, 'unread_exp'), '-inf', NOW_S)
        rows[#rows + 1] = {id, e, unread}
      end
    end
  end
end
return {rows, m}
