-- KEYS: the content id counter, the entry id counter (one slot: ``{ids}``).
-- ARGV: prefix, now, how many content ids, how many entry ids, content id
-- floor, entry id floor. Reserve ids for writes made later, by the scripts of
-- the slot groups (a send, an add); return the first of each ('' for none).
--
-- Ids only grow, even across a Redis that lost its data (a restart without
-- persistence, a failover to a replica that lagged): a counter never falls
-- below the clock, milliseconds since 2020 times 1024 read from Redis's own
-- TIME, nor below its floor, the highest id the caller's process has seen. At
-- 1024 ids a millisecond, ids stay below 2^53 (exact in Lua's and JavaScript's
-- doubles) until 2298. Ids go back as strings: Lua would print a number this
-- large as 1.2e+15.
if redis.replicate_commands then redis.replicate_commands() end  -- Redis < 5: TIME in a write
local t = redis.call('TIME')
local clock = (tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - 1577836800000) * 1024
local function next_ids(key, n, floor)
  if n == 0 then return '' end
  local last = math.max(tonumber(redis.call('GET', key) or '0'), clock, tonumber(floor) or 0)
  redis.call('SET', key, string.format('%d', last + n))
  return string.format('%d', last + 1)
end
return {
  next_ids(KEYS[1], tonumber(ARGV[3]), ARGV[5]),
  next_ids(KEYS[2], tonumber(ARGV[4]), ARGV[6]),
}
