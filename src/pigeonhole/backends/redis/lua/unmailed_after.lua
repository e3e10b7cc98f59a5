-- ARGV: prefix, now, cutoff, cursor ('<score> <id>' of an entry, '-' to start),
-- count. The members of the group's ``unmailed`` index (scored by creation
-- time, ties in byte order of the ids, which are digits) just after the
-- cursor and scored up to ``cutoff``, at most ``count``, flat with their
-- scores. The cursor's entry need not be in this group, nor indexed any more.
local key = gkey('unmailed')
local cutoff, count = tonumber(ARGV[3]), tonumber(ARGV[5])

local function member(rank) return redis.call('ZRANGE', key, rank, rank)[1] end

-- The rank of the first member after (score, id): the cursor's own rank while
-- it is indexed here, else a search among the members of its score. Those of
-- one send in one group are a run of ids, so the cursor is most often beyond
-- either end of the run, which two look-ups tell before any binary search.
local function start_after(cursor)
  local score, id = string.match(cursor, '^(%S+) (%S+)$')
  if not score then return 0 end
  local rank = redis.call('ZRANK', key, id)
  if rank and tonumber(redis.call('ZSCORE', key, id)) == tonumber(score) then return rank + 1 end
  local low = redis.call('ZCOUNT', key, '-inf', '(' .. score)
  local high = redis.call('ZCOUNT', key, '-inf', score)
  if low == high or member(low) > id then return low end
  if member(high - 1) <= id then return high end
  while low < high do
    local middle = math.floor((low + high) / 2)
    if member(middle) <= id then low = middle + 1 else high = middle end
  end
  return low
end

local rank = start_after(ARGV[4])
local found = redis.call('ZRANGE', key, rank, rank + count - 1, 'WITHSCORES')
for i = 2, #found, 2 do
  if tonumber(found[i]) > cutoff then
    local kept = {}
    for j = 1, i - 2 do kept[j] = found[j] end
    return kept
  end
end
return found
