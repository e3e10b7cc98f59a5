-- Every script starts with these helpers, after the key helpers of keys.py
-- (ukey, ekey, mkey, gkey, and P, the key prefix, ARGV[1]). ARGV[2] is "now"
-- (epoch seconds as Python wrote them) in every script.
--
-- Timestamps are only ever copied from ARGV into Redis as the strings Python
-- wrote, never computed here: Lua prints numbers with 14 significant digits,
-- which would drop the microseconds of an epoch time.
local NOW_S = ARGV[2]
local NOW = tonumber(NOW_S)

-- Hand out ``n`` ids of the counter ``name`` and return the first, as a string
-- (Lua would print a number this large as 1.2e+15). Ids only grow, even across
-- a Redis that lost its data (a restart without persistence, a failover to a
-- replica that lagged): the counter never falls below the clock, milliseconds
-- since 2020 times 1024 read from Redis's own TIME, nor below ``floor``, the
-- highest id the caller's process has seen. At 1024 ids a millisecond, ids
-- stay below 2^53 (exact in Lua's and JavaScript's doubles) until 2298.
local function next_ids(name, n, floor)
  if redis.replicate_commands then redis.replicate_commands() end  -- Redis < 5: TIME in a write
  local key = gkey('ids:' .. name)
  local t = redis.call('TIME')
  local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local last = math.max(
    tonumber(redis.call('GET', key) or '0'), (ms - 1577836800000) * 1024, tonumber(floor) or 0)
  redis.call('SET', key, string.format('%d', last + n))
  return string.format('%d', last + 1)
end

local function visible(x) return (not x) or tonumber(x) > NOW end

-- An entry's fields, in ENTRY_FIELDS order (see encoding.py): u, m, c, r, a, e,
-- x, n (seen), s (saved).
local function read_entry(id) return redis.call('HMGET', ekey(id), unpack(ENTRY_FIELDS)) end

-- Count a change to the user's inbox and note when it happened: state() reads
-- both, so clients can poll with ETag and Last-Modified.
local function touch(uid)
  redis.call('HINCRBY', ukey(uid, 'v'), 'n', 1)
  redis.call('HSET', ukey(uid, 'v'), 't', NOW_S)
end

-- Put an entry in exactly the indexes its state calls for, and out of the others.
-- Its seen and saved stamps are read from its hash. A saved entry stays out of
-- the global ``read`` and ``expiring`` indexes, which purge() walks: it survives.
local function reindex(id, uid, r, a, x)
  touch(uid)
  local ecns = redis.call('HMGET', ekey(id), 'e', 'c', 'n', 's')
  local saved = ecns[4]
  if a then
    redis.call('ZREM', ukey(uid, 'all'), id)
    redis.call('ZADD', ukey(uid, 'archived'), id, id)
  else
    redis.call('ZADD', ukey(uid, 'all'), id, id)
    redis.call('ZREM', ukey(uid, 'archived'), id)
  end
  if r or a then
    redis.call('ZREM', ukey(uid, 'unread'), id)
    redis.call('ZREM', ukey(uid, 'unread_exp'), id)
  else
    redis.call('ZADD', ukey(uid, 'unread'), id, id)
    if x then
      redis.call('ZADD', ukey(uid, 'unread_exp'), x, id)
    else
      redis.call('ZREM', ukey(uid, 'unread_exp'), id)
    end
  end
  if r or a or ecns[3] then
    redis.call('ZREM', ukey(uid, 'unseen'), id)
  else
    redis.call('ZADD', ukey(uid, 'unseen'), id, id)
  end
  if saved then
    redis.call('ZADD', ukey(uid, 'saved'), id, id)
  else
    redis.call('ZREM', ukey(uid, 'saved'), id)
  end
  if r and not saved then
    redis.call('ZADD', gkey('read'), r, id)
  else
    redis.call('ZREM', gkey('read'), id)
  end
  if x and not saved then
    redis.call('ZADD', gkey('expiring'), x, id)
  else
    redis.call('ZREM', gkey('expiring'), id)
  end
  if r or a or ecns[1] then
    redis.call('ZREM', gkey('unmailed'), id)
  else
    redis.call('ZADD', gkey('unmailed'), ecns[2], id)
  end
end

-- Index a new, unread entry: the short path of reindex() for fan-out.
-- With ``shared``, the members of the two sets every entry joins (the digest queue
-- and the expiry index) are collected there, for add_shared() to write in a few calls.
local function index_new(id, uid, x, c, shared)
  touch(uid)
  redis.call('ZADD', ukey(uid, 'all'), id, id)
  redis.call('ZADD', ukey(uid, 'unread'), id, id)
  redis.call('ZADD', ukey(uid, 'unseen'), id, id)
  if x then redis.call('ZADD', ukey(uid, 'unread_exp'), x, id) end
  if shared then
    local n = #shared.unmailed
    shared.unmailed[n + 1], shared.unmailed[n + 2] = c, id
    if x then
      n = #shared.expiring
      shared.expiring[n + 1], shared.expiring[n + 2] = x, id
    end
  else
    redis.call('ZADD', gkey('unmailed'), c, id)
    if x then redis.call('ZADD', gkey('expiring'), x, id) end
  end
end

-- Write what index_new() collected: one ZADD per few thousand members.
local function add_shared(shared)
  for name, members in pairs(shared) do
    for i = 1, #members, 4000 do
      redis.call('ZADD', gkey(name), unpack(members, i, math.min(i + 3999, #members)))
    end
  end
end

-- Delete an entry and its index members. A content left without entries joins
-- the orphans set, which purge() empties (as the database keeps the row until then).
local function remove_entry(id)
  local e = redis.call('HMGET', ekey(id), 'u', 'm')
  redis.call('ZREM', gkey('read'), id)
  redis.call('ZREM', gkey('expiring'), id)
  redis.call('ZREM', gkey('unmailed'), id)
  if not e[1] then return false end
  for _, name in ipairs({'all', 'unread', 'unread_exp', 'archived', 'unseen', 'saved'}) do
    redis.call('ZREM', ukey(e[1], name), id)
  end
  redis.call('DEL', ekey(id))
  if redis.call('EXISTS', ukey(e[1], 'all'), ukey(e[1], 'archived')) == 0 then
    -- Nothing left to version: give the key back. Entry ids never repeat, so
    -- a later inbox cannot be mistaken for an earlier one.
    redis.call('DEL', ukey(e[1], 'v'))
  else
    touch(e[1])
  end
  if redis.call('EXISTS', mkey(e[2])) == 1 then
    if redis.call('HINCRBY', mkey(e[2]), 'refs', -1) <= 0 then
      redis.call('SADD', gkey('orphans'), e[2])
    end
  end
  return true
end
