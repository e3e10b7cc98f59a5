-- Every script starts with these helpers, after the key helpers of keys.py
-- (ukey, ekey, mkey, gkey, and G, the slot group's base name, KEYS[1]).
-- ARGV[1] is the key prefix and ARGV[2] "now" (epoch seconds as Python wrote
-- them) in every script.
--
-- Timestamps are only ever copied from ARGV into Redis as the strings Python
-- wrote, never computed here: Lua prints numbers with 14 significant digits,
-- which would drop the microseconds of an epoch time.
local NOW_S = ARGV[2]
local NOW = tonumber(NOW_S)

local function visible(x) return (not x) or tonumber(x) > NOW end

-- An entry a send wrote in its default state (unread, unarchived, no expiry,
-- no thread) has no hash: a send of 100,000 would otherwise create 100,000
-- keys. Its fields are its send's: ``ranges`` scores each such part of a send
-- by its first id (member ``first:count:content id``), and ``ru:<first>``
-- lists the part's users in id order. The entry exists while it is in its
-- user's ``unread`` set; the first change gives it a hash (own()). Return its
-- user, content id and creation time, or false for an id no such entry holds.
--
-- Such a part stands in the digest queue as one member, ``first:count`` in
-- ``unmailed_parts`` scored by its creation time, for its entries that still
-- have no hash and are unread; an entry that gets a hash leaves it, and
-- reindex() puts it in ``unmailed`` if it is due. So each entry waiting for
-- its email is in exactly one of the two.
local function plain(id)
  if not tonumber(id) then return false end
  local part = redis.call('ZREVRANGEBYSCORE', gkey('ranges'), id, '-inf', 'LIMIT', 0, 1)[1]
  if not part then return false end
  local first, count, mid = string.match(part, '^(%d+):(%d+):(.+)$')
  local offset = tonumber(id) - tonumber(first)
  if offset >= tonumber(count) then return false end
  local uid = redis.call('LINDEX', pkey(first), offset)
  if not uid or not redis.call('ZSCORE', ukey(uid, 'unread'), id) then return false end
  return uid, mid, redis.call('HGET', mkey(mid), 'created')
end

-- HMGET of an entry's fields, from its hash or, for an entry without one,
-- plain()'s user (``u``), content (``m``) and creation time (``c``); every
-- other field of such an entry is unset.
local function entry_fields(id, ...)
  local e = redis.call('HMGET', ekey(id), 'u', ...)
  local found = {}
  if e[1] then
    for i = 2, #e do found[i - 1] = e[i] end
    return found
  end
  local uid, mid, c = plain(id)
  for i, name in ipairs({...}) do
    found[i] = uid and ((name == 'u' and uid) or (name == 'm' and mid) or (name == 'c' and c))
  end
  return found
end

-- Give an entry without a hash one, before a change writes a field of it.
local function own(id)
  if redis.call('EXISTS', ekey(id)) == 1 then return end
  local uid, mid, c = plain(id)
  if uid then
    redis.call('HSET', ekey(id), 'u', uid, 'm', mid, 'c', c)
    -- With a hash the entry leaves its part's digest queue (see unmailed_parts):
    -- it waits in ``unmailed`` until the change that follows says otherwise.
    redis.call('ZADD', gkey('unmailed'), c, id)
  end
end

-- An entry's fields, in ENTRY_FIELDS order (see encoding.py): u, m, c, r, a, e,
-- x, n (seen), s (saved).
local function read_entry(id) return entry_fields(id, unpack(ENTRY_FIELDS)) end

-- Count a change to the user's inbox and note when it happened: state() reads
-- both, so clients can poll with ETag and Last-Modified.
local function touch(uid)
  redis.call('HINCRBY', ukey(uid, 'v'), 'n', 1)
  redis.call('HSET', ukey(uid, 'v'), 't', NOW_S)
end

-- A user's entries are split by state over three sorted sets, each entry in
-- exactly one, scored by id: ``unread``, ``read`` (read, not archived) and
-- ``archived``. The inbox's "all" is ``unread`` and ``read`` together (see
-- newest() and list.lua), so a new entry costs one ZADD.
local STATES = {'unread', 'read', 'archived'}

-- The state set an entry belongs in: archived wins over read.
local function state_of(r, a) return (a and 'archived') or (r and 'read') or 'unread' end

-- The user's newest entry in or out of the archive, as "all" orders them; or false.
local function newest(uid)
  local u = redis.call('ZRANGE', ukey(uid, 'unread'), -1, -1)[1]
  local r = redis.call('ZRANGE', ukey(uid, 'read'), -1, -1)[1]
  if u and r then return tonumber(u) > tonumber(r) and u or r end
  return u or r or false
end

-- Put an entry in exactly the indexes its state calls for, and out of the others.
-- Its seen and saved stamps are read from its hash. A saved entry stays out of
-- the global ``read`` and ``expiring`` indexes, which purge() walks: it survives.
local function reindex(id, uid, r, a, x)
  touch(uid)
  local ecns = entry_fields(id, 'e', 'c', 'n', 's')
  local saved = ecns[4]
  local into = state_of(r, a)
  for _, name in ipairs(STATES) do
    if name == into then
      redis.call('ZADD', ukey(uid, name), id, id)
    else
      redis.call('ZREM', ukey(uid, name), id)
    end
  end
  if x and into == 'unread' then
    redis.call('ZADD', ukey(uid, 'unread_exp'), x, id)
  else
    redis.call('ZREM', ukey(uid, 'unread_exp'), id)
  end
  if not r and not a and ecns[3] then
    redis.call('ZADD', ukey(uid, 'seen'), id, id)
  else
    redis.call('ZREM', ukey(uid, 'seen'), id)
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
-- and the expiry index) are collected there, for write_shared() to write in a few calls.
-- With ``untouched``, the user's change counter stays as it is: the caller
-- adds an entry and nothing else, which state() sees in the inbox's size.
local function index_new(id, uid, x, c, shared, untouched)
  if not untouched then touch(uid) end
  redis.call('ZADD', ukey(uid, 'unread'), id, id)
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

-- Write what index_new() collected (``ZADD``), or take out what
-- leave_indexes() did (``ZREM``): one call per few thousand members of each
-- of the group's shared indexes.
local function write_shared(command, sets)
  for name, members in pairs(sets) do
    for i = 1, #members, 4000 do
      redis.call(command, gkey(name), unpack(members, i, math.min(i + 3999, #members)))
    end
  end
end

-- Take an entry out of every index, its own user's and the shared ones.
local function unindex(id, uid)
  redis.call('ZREM', gkey('read'), id)
  redis.call('ZREM', gkey('expiring'), id)
  redis.call('ZREM', gkey('unmailed'), id)
  if not uid then return end
  for _, name in ipairs({'unread', 'read', 'archived', 'unread_exp', 'seen', 'saved'}) do
    redis.call('ZREM', ukey(uid, name), id)
  end
end

-- Take an entry out of one of the group's shared indexes, or note it in
-- ``gone`` (if given) for write_shared() to take out with others.
local function leave_shared(id, name, gone)
  if not gone then return redis.call('ZREM', gkey(name), id) end
  local members = gone[name]
  if not members then
    members = {}
    gone[name] = members
  end
  members[#members + 1] = id
end

-- Take an entry out of the indexes its state put it in, by the rules of
-- reindex(): ``r``, ``a``, ``x``, ``n``, ``s``, ``e`` are its read, archived,
-- expiry, seen, saved and emailed fields. unindex() tries every index; this
-- touches only those the entry is in. With ``gone``, the group's shared
-- indexes' members are collected there instead, for write_shared().
local function leave_indexes(id, uid, r, a, x, n, s, e, gone)
  local unread = not r and not a
  redis.call('ZREM', ukey(uid, state_of(r, a)), id)
  if x and unread then redis.call('ZREM', ukey(uid, 'unread_exp'), id) end
  if n and unread then redis.call('ZREM', ukey(uid, 'seen'), id) end
  if s then redis.call('ZREM', ukey(uid, 'saved'), id) end
  if r and not s then leave_shared(id, 'read', gone) end
  if x and not s then leave_shared(id, 'expiring', gone) end
  if unread and not e then leave_shared(id, 'unmailed', gone) end
end

-- Delete an entry's hash and give up its hold on its content. A content left
-- without entries joins the orphans set, which purge() empties (as the
-- database keeps the row until then).
local function drop(id, mid)
  redis.call('DEL', ekey(id))
  if redis.call('EXISTS', mkey(mid)) == 1 then
    if redis.call('HINCRBY', mkey(mid), 'refs', -1) <= 0 then
      redis.call('SADD', gkey('orphans'), mid)
    end
  end
end

-- Delete an entry and its index members; a thread's row takes its folded
-- history with it. Return whether the entry was there, and how many folded
-- entries went with it.
local function remove_entry(id)
  local e = entry_fields(id, 'u', 'm', 'o')
  unindex(id, e[1])
  if not e[1] then return false end
  local thread = not e[3] and redis.call('HGET', mkey(e[2]), 'thread')
  local folded = 0
  if thread and redis.call('HGET', ukey(e[1], 'threads'), thread) == id then
    for _, old in ipairs(redis.call('ZRANGE', hkey(e[1], thread), 0, -1)) do
      if old ~= id then
        local m = entry_fields(old, 'm')[1]
        if m then
          drop(old, m)
          folded = folded + 1
        end
      end
    end
    redis.call('DEL', hkey(e[1], thread))
    redis.call('HDEL', ukey(e[1], 'threads'), thread)
  end
  drop(id, e[2])
  if redis.call('EXISTS', ukey(e[1], 'unread'), ukey(e[1], 'read'), ukey(e[1], 'archived')) == 0 then
    -- Nothing left to version: give the key back. Entry ids never repeat, so
    -- a later inbox cannot be mistaken for an earlier one.
    redis.call('DEL', ukey(e[1], 'v'))
  else
    touch(e[1])
  end
  return true, folded
end

-- Make the new entry ``id`` the user's row of ``thread``, folding the previous
-- row into its history: the count goes on (or restarts at 1 once the row was
-- read), the senders (``sender``, a JSON value or false) gather newest first,
-- at most three, and a saved row stays saved. Return the saved stamp, if any,
-- for the caller to index once the entry is indexed as new.
--
-- The old row leaves only the indexes its state put it in (the rules of
-- reindex()); with ``gone``, the members of the group's shared indexes are
-- collected there, for write_shared() to take out in a few calls.
local function fold(id, uid, thread, sender, gone)
  local rows = ukey(uid, 'threads')
  local old = redis.call('HGET', rows, thread)
  redis.call('HSET', rows, thread, id)
  redis.call('ZADD', hkey(uid, thread), id, id)
  if not old then return false end
  local o = entry_fields(old, 'u', 'm', 'r', 's', 'k', 'f', 'a', 'x', 'n', 'e')
  if not o[1] then return false end
  leave_indexes(old, uid, o[3], o[7], o[8], o[9], o[4], o[10], gone)
  redis.call('HSET', ekey(old), 'o', '1')
  local count = o[3] and 1 or (tonumber(o[5] or '1') + 1)
  local previous = {}
  if o[6] then
    for token in string.gmatch(o[6], '[^\n]+') do previous[#previous + 1] = token end
  else
    local first = redis.call('HGET', mkey(o[2]), 'from_user_id')
    if first then previous[1] = first end
  end
  local senders, seen = {}, {}
  if sender then senders[1], seen[sender] = sender, true end
  for _, token in ipairs(previous) do
    if #senders < 3 and not seen[token] then senders[#senders + 1], seen[token] = token, true end
  end
  redis.call('HSET', ekey(id), 'k', count, 'f', table.concat(senders, '\n'))
  if o[4] then redis.call('HSET', ekey(id), 's', o[4]) end
  return o[4]
end

-- Write the group's copy of a send's content, unless the send's first chunk
-- in this group did already: flagged as sending (with its start time, in the
-- ``sending`` index too) so purge leaves it alone while recipients are added,
-- and takes the send back should it never finish; it is an orphan until its
-- first entry arrives. ``fields`` are the content's field/value pairs.
local function copy_content(mid, fields)
  if redis.call('EXISTS', mkey(mid)) == 1 then return end
  redis.call('HSET', mkey(mid), 'refs', 0, 'sending', NOW_S, unpack(fields))
  redis.call('SADD', gkey('orphans'), mid)
  redis.call('ZADD', gkey('sending'), NOW_S, mid)
end

-- Delete the group's copy of a content, with the parts plain() reads its
-- entries from (the caller has removed the entries). Return 1 if it was there.
local function drop_copy(mid)
  local ranges = redis.call('HGET', mkey(mid), 'ranges')
  for first, count in string.gmatch(ranges or '', '(%d+):(%d+)') do
    if redis.call('ZREM', gkey('ranges'), first .. ':' .. count .. ':' .. mid) == 1 then
      redis.call('DEL', pkey(first))
      redis.call('ZREM', gkey('unmailed_parts'), first .. ':' .. count)
    end
  end
  return redis.call('DEL', mkey(mid))
end
