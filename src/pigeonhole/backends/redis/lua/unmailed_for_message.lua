-- ARGV: prefix, now, message id, cursor (last id seen, '' to start), limit, budget.
-- The message's entries not yet emailed, in id order, read from the id
-- ranges its send reserved; return the cursor to go on from ('' at the end).
local mid, after = ARGV[3], tonumber(ARGV[4] ~= '' and ARGV[4] or '0')
local limit, budget = tonumber(ARGV[5]), tonumber(ARGV[6])
local m = redis.call('HGETALL', mkey(mid))
if #m == 0 then return {'', {}} end
local ranges = ''
for i = 1, #m, 2 do if m[i] == 'ranges' then ranges = m[i + 1] end end
local rows, scanned, last = {}, 0, false
for first, count in string.gmatch(ranges, '(%d+):(%d+)') do
  first, count = tonumber(first), tonumber(count)
  local start = math.max(first, after + 1)
  for n = start, first + count - 1 do
    if #rows >= limit or scanned >= budget then return {last, rows} end
    local id = string.format('%d', n)
    scanned = scanned + 1
    last = id
    local e = read_entry(id)
    if e[2] == mid and not e[6] and visible(e[7]) and not e[10] then rows[#rows + 1] = {id, e, m} end
  end
end
return {'', rows}
