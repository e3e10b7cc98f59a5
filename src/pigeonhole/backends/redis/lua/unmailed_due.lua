-- ARGV: prefix, now, cutoff, cursor ('<score> <id>' of the last entry taken,
-- '-' to start), limit, budget. Read the group's ``unmailed`` index (scored by
-- creation time, ties in byte order of the ids, which are digits) from just
-- after the cursor, up to ``cutoff``: the entries still unread, unarchived,
-- visible and not emailed, with their contents, at most ``limit`` of them and
-- looking at no more than ``budget`` members. Return the cursor to go on from
-- ('' once every member up to ``cutoff`` has been looked at) and the rows.
local key = gkey('unmailed')
local cutoff, limit, budget = tonumber(ARGV[3]), tonumber(ARGV[5]), tonumber(ARGV[6])

-- The rank of the first member after (score, id): the cursor's own rank while
-- it is still indexed, else a binary search among the members of its score
-- (claimed, read or deleted since, or an entry of another group).
local function start_after(cursor)
  local score, id = string.match(cursor, '^(%S+) (%S+)$')
  if not score then return 0 end
  local rank = redis.call('ZRANK', key, id)
  if rank and tonumber(redis.call('ZSCORE', key, id)) == tonumber(score) then return rank + 1 end
  local low = redis.call('ZCOUNT', key, '-inf', '(' .. score)
  local high = redis.call('ZCOUNT', key, '-inf', score)
  while low < high do
    local middle = math.floor((low + high) / 2)
    if redis.call('ZRANGE', key, middle, middle)[1] <= id then
      low = middle + 1
    else
      high = middle
    end
  end
  return low
end

local rank, rows, scanned = start_after(ARGV[4]), {}, 0
local step = math.max(1, math.min(limit, budget))
while true do
  local batch = redis.call('ZRANGE', key, rank, rank + step - 1, 'WITHSCORES')
  for i = 1, #batch, 2 do
    local id, score = batch[i], batch[i + 1]
    if tonumber(score) > cutoff then return {'', rows} end
    rank, scanned = rank + 1, scanned + 1
    local e = read_entry(id)
    if e[1] and not e[4] and not e[5] and not e[6] and visible(e[7]) then
      local m = redis.call('HGETALL', mkey(e[2]))
      if #m > 0 then rows[#rows + 1] = {id, e, m} end
    end
    if #rows >= limit or scanned >= budget then return {score .. ' ' .. id, rows} end
  end
  if #batch < 2 * step then return {'', rows} end
end
