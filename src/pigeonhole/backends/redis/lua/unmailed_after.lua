-- ARGV: prefix, now, cutoff, cursor ('<score> <id>' of an entry, '-' to start),
-- count. The entries of the group's digest queue (scored by creation time,
-- ties in byte order of the ids, which are digits) just after the cursor and
-- scored up to ``cutoff``, at most ``count``, flat with their scores. The
-- queue is the ``unmailed`` index, one member per entry, merged with the
-- parts of ``unmailed_parts``, each expanded to those of its entries that
-- still have no hash and are unread (see plain()). The cursor's entry need
-- not be in this group, nor indexed any more.
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

-- A part's ids after ``after`` (or all), in byte order, each with its offset
-- in the part. Used only where a part's ids differ in their number of digits
-- from each other or from the cursor's, so that byte order is not the order
-- of the numbers: rare, a part crossing a power of ten.
local function sorted_ids(base, size, after)
  local ids = {}
  for offset = 0, size - 1 do
    local id = string.format('%d', base + offset)
    if not after or id > after then ids[#ids + 1] = {id, offset} end
  end
  table.sort(ids, function(a, b) return a[1] < b[1] end)
  return ids
end

-- Up to ``count`` entries of the parts after the cursor, as {id, score}, in
-- order. A part none of whose entries is waiting any more leaves the queue:
-- an entry never comes back to its part once it has a hash or was read.
-- A part's ids are a run of numbers; where they have as many digits as the
-- cursor's, byte order is their order, so a page starts just after the
-- cursor and reads the part's users a window at a time: a digest run pages
-- through a send of 100,000 without reading it whole for every page.
local function from_parts(cursor)
  local score, after = string.match(cursor, '^(%S+) (%S+)$')
  local low = score and tonumber(score) or false
  local parts = redis.call(
    'ZRANGEBYSCORE', gkey('unmailed_parts'), score or '-inf', ARGV[3], 'WITHSCORES')
  local taken = {}
  for i = 1, #parts, 2 do
    local s = parts[i + 1]
    if #taken >= count and tonumber(s) > tonumber(taken[#taken][2]) then break end
    local first, n = string.match(parts[i], '^(%d+):(%d+)$')
    local base, size = tonumber(first), tonumber(n)
    local whole = not (low and tonumber(s) == low)
    local digits = #string.format('%d', base + size - 1)
    local live = 0
    local function offer(id, uid)
      if uid and redis.call('EXISTS', ekey(id)) == 0 and redis.call('ZSCORE', ukey(uid, 'unread'), id) then
        live = live + 1
        taken[#taken + 1] = {id, s}
      end
      return live >= count
    end
    if digits == #first and (whole or #after == #first) then
      local offset = 0
      if not whole and after >= first then offset = tonumber(after) - base + 1 end
      while offset < size and live < count do
        local stop = math.min(size - 1, offset + count - 1)
        local users = redis.call('LRANGE', pkey(first), offset, stop)  -- first as written: Lua prints 14 digits
        for k = 0, stop - offset do
          if offer(string.format('%d', base + offset + k), users[k + 1]) then break end
        end
        offset = stop + 1
      end
    else
      local users = redis.call('LRANGE', pkey(first), 0, -1)
      for _, pair in ipairs(sorted_ids(base, size, not whole and after)) do
        if offer(pair[1], users[pair[2] + 1]) then break end
      end
    end
    if whole and live == 0 then redis.call('ZREM', gkey('unmailed_parts'), parts[i]) end
  end
  return taken
end

local rank = start_after(ARGV[4])
local found = redis.call('ZRANGE', key, rank, rank + count - 1, 'WITHSCORES')
local merged = from_parts(ARGV[4])
for i = 1, #found, 2 do
  if tonumber(found[i + 1]) <= cutoff then merged[#merged + 1] = {found[i], found[i + 1]} end
end
table.sort(merged, function(a, b)
  local x, y = tonumber(a[2]), tonumber(b[2])
  if x ~= y then return x < y end
  return a[1] < b[1]
end)
local page = {}
for i = 1, math.min(count, #merged) do
  page[#page + 1], page[#page + 2] = merged[i][1], merged[i][2]
end
return page
