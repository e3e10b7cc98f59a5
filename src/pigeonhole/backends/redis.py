"""
A store in Redis, for sites whose inboxes are hot enough to want memory speed.

Every change that touches more than one key runs as one Lua script, so Redis
applies it whole or not at all and no other client sees it half done: an unread
count never disagrees with the entries it counts. Fan-out to many recipients is
one script per chunk of recipients; ``docs/backends.md`` describes the key
layout and what a failure in the middle of a send leaves behind.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from ..exceptions import BackendUnavailable
from ..message import NewMessage, StoredMessage
from .base import BaseBackend, Change, InboxQuery, InboxState, Outcome, Recipients, SentMessage

try:
    import redis
except ImportError as exc:
    raise ImproperlyConfigured(
        "pigeonhole.backends.redis.RedisBackend needs redis-py: "
        'pip install "django-pigeonhole[redis]"'
    ) from exc

__all__ = ["RedisBackend"]

#: Options handed to ``redis.Redis.from_url`` as they are.
POOL_OPTIONS = (
    "max_connections",
    "socket_timeout",
    "socket_connect_timeout",
    "health_check_interval",
)

# Fields of an entry hash, in the order every script reads them.
ENTRY_FIELDS = ("u", "m", "c", "r", "a", "e", "x")

# Every script starts with these helpers. ARGV[1] is the key prefix and ARGV[2]
# "now" (epoch seconds as Python wrote them) in every script.
#
# Timestamps are only ever copied from ARGV into Redis as the strings Python
# wrote, never computed here: Lua prints numbers with 14 significant digits,
# which would drop the microseconds of an epoch time.
_PREAMBLE = """
local P = ARGV[1]
local NOW_S = ARGV[2]
local NOW = tonumber(NOW_S)
local function ekey(id) return P .. ':e:' .. id end
local function mkey(id) return P .. ':m:' .. id end
local function ukey(uid, name) return P .. ':u:' .. uid .. ':' .. name end

local function visible(x) return (not x) or tonumber(x) > NOW end

-- Count a change to the user's inbox and note when it happened: state() reads
-- both, so clients can poll with ETag and Last-Modified.
local function touch(uid)
  redis.call('HINCRBY', ukey(uid, 'v'), 'n', 1)
  redis.call('HSET', ukey(uid, 'v'), 't', NOW_S)
end

-- Put an entry in exactly the indexes its state calls for, and out of the others.
local function reindex(id, uid, r, a, x)
  touch(uid)
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
  if r then redis.call('ZADD', P .. ':read', r, id) else redis.call('ZREM', P .. ':read', id) end
  if x then
    redis.call('ZADD', P .. ':expiring', x, id)
  else
    redis.call('ZREM', P .. ':expiring', id)
  end
  local ec = redis.call('HMGET', ekey(id), 'e', 'c')
  if r or a or ec[1] then
    redis.call('ZREM', P .. ':unmailed', id)
  else
    redis.call('ZADD', P .. ':unmailed', ec[2], id)
  end
end

-- Index a new, unread entry: the short path of reindex() for fan-out.
-- With ``shared``, the members of the two sets every entry joins (the digest queue
-- and the expiry index) are collected there, for add_shared() to write in a few calls.
local function index_new(id, uid, x, c, shared)
  touch(uid)
  redis.call('ZADD', ukey(uid, 'all'), id, id)
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
    redis.call('ZADD', P .. ':unmailed', c, id)
    if x then redis.call('ZADD', P .. ':expiring', x, id) end
  end
end

-- Write what index_new() collected: one ZADD per few thousand members.
local function add_shared(shared)
  for name, members in pairs(shared) do
    for i = 1, #members, 4000 do
      redis.call('ZADD', P .. ':' .. name, unpack(members, i, math.min(i + 3999, #members)))
    end
  end
end

-- Delete an entry and its index members. A content left without entries joins
-- the orphans set, which purge() empties (as the database keeps the row until then).
local function remove_entry(id)
  local e = redis.call('HMGET', ekey(id), 'u', 'm')
  redis.call('ZREM', P .. ':read', id)
  redis.call('ZREM', P .. ':expiring', id)
  redis.call('ZREM', P .. ':unmailed', id)
  if not e[1] then return false end
  for _, name in ipairs({'all', 'unread', 'unread_exp', 'archived'}) do
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
      redis.call('SADD', P .. ':orphans', e[2])
    end
  end
  return true
end
"""

#: The user's sorted set each listing state walks ("claim": unread, marked read as read).
_STATE_ZSETS = {
    "unread": "unread",
    "claim": "unread",
    "read": "all",
    "all": "all",
    "archived": "archived",
}

_SCRIPTS = {
    # ARGV: prefix, now, created, expires|'', then content field/value pairs.
    # One message for one user: the content and its single entry together.
    "add": """
local x = ARGV[4] ~= '' and ARGV[4] or false
local mid = redis.call('INCR', P .. ':ids:message')
local fields = {}
for i = 6, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', mkey(mid), 'refs', 1, unpack(fields))
local id = redis.call('INCR', P .. ':ids:entry')
if x then
  redis.call('HSET', ekey(id), 'u', ARGV[5], 'm', mid, 'c', ARGV[3], 'x', x)
else
  redis.call('HSET', ekey(id), 'u', ARGV[5], 'm', mid, 'c', ARGV[3])
end
index_new(id, ARGV[5], x, ARGV[3])
redis.call('HSET', mkey(mid), 'ranges', id .. ':1')
return {mid, id}
""",
    # ARGV: prefix, now, content field/value pairs. The content of a send,
    # flagged as sending (with its start time) so purge leaves it alone while
    # recipients are added; it is an orphan until the first of them arrives.
    "create": """
local mid = redis.call('INCR', P .. ':ids:message')
local fields = {}
for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', mkey(mid), 'refs', 0, 'sending', NOW_S, unpack(fields))
redis.call('SADD', P .. ':orphans', mid)
return mid
""",
    # ARGV: prefix, now, message id, created, expires|'', first entry id, user ids.
    # One chunk of a send. Entry ids were reserved by the caller, so a failed
    # send knows which ids to take back; an id already written is skipped, so
    # running a chunk twice writes it once.
    "fanout": """
local mid, c = ARGV[3], ARGV[4]
local x = ARGV[5] ~= '' and ARGV[5] or false
local first = tonumber(ARGV[6])
local added = 0
local shared = {unmailed = {}, expiring = {}}
for i = 7, #ARGV do
  local id = string.format('%d', first + i - 7)
  if redis.call('EXISTS', ekey(id)) == 0 then
    local uid = ARGV[i]
    if x then
      redis.call('HSET', ekey(id), 'u', uid, 'm', mid, 'c', c, 'x', x)
    else
      redis.call('HSET', ekey(id), 'u', uid, 'm', mid, 'c', c)
    end
    index_new(id, uid, x, c, shared)
    added = added + 1
  end
end
add_shared(shared)
-- Remember the ids this send reserved, so the entries of a message can be found.
local ranges = redis.call('HGET', mkey(mid), 'ranges')
local range = ARGV[6] .. ':' .. (#ARGV - 6)
redis.call('HSET', mkey(mid), 'ranges', ranges and (ranges .. ',' .. range) or range)
if added > 0 and redis.call('HINCRBY', mkey(mid), 'refs', added) > 0 then
  redis.call('SREM', P .. ':orphans', mid)
end
return added
""",
    # ARGV: prefix, now, message id. The send is over.
    "finish": """
redis.call('HDEL', mkey(ARGV[3]), 'sending')
local refs = tonumber(redis.call('HGET', mkey(ARGV[3]), 'refs') or '0')
if refs <= 0 then redis.call('SADD', P .. ':orphans', ARGV[3]) end
return refs
""",
    # ARGV: prefix, now, message id, first entry id, count. Take back a failed
    # send's entries (those still pointing at its content), then the content.
    "withdraw": """
local mid, first = ARGV[3], tonumber(ARGV[4])
local removed = 0
for i = 0, tonumber(ARGV[5]) - 1 do
  local id = string.format('%d', first + i)
  if redis.call('HGET', ekey(id), 'm') == mid then
    remove_entry(id)
    removed = removed + 1
  end
end
return removed
""",
    "drop_message": """
redis.call('DEL', mkey(ARGV[3]))
redis.call('SREM', P .. ':orphans', ARGV[3])
return 1
""",
    # KEYS: the zset of the state. ARGV: prefix, now, user, state, cursor, limit,
    # budget, since|'', before|'', tag|'', levels... Walk the zset newest first
    # from the cursor, skipping what the filters refuse, until ``limit`` rows or
    # ``budget`` members scanned; return the cursor to go on from ('' at the end).
    "list": """
local uid, state, cursor = ARGV[3], ARGV[4], ARGV[5]
local limit, budget = tonumber(ARGV[6]), tonumber(ARGV[7])
local since = ARGV[8] ~= '' and tonumber(ARGV[8]) or false
local before = ARGV[9] ~= '' and tonumber(ARGV[9]) or false
local tag = ARGV[10] ~= '' and (' ' .. ARGV[10] .. ' ') or false
local levels = false
if #ARGV > 10 then
  levels = {}
  for i = 11, #ARGV do levels[ARGV[i]] = true end
end
-- "claim" is the unread state, each row marked read as it is read: the request
-- path's claim in one step. Its rows carry the entry as it was (unread).
local claim = state == 'claim'
local function in_state(r, a)
  if state == 'unread' or claim then return not r and not a end
  if state == 'read' then return r and not a end
  if state == 'all' then return not a end
  return a
end
local function content_ok(m)
  if not levels and not tag then return true end
  local level, tags = '', ''
  for i = 1, #m, 2 do
    if m[i] == 'level' then level = m[i + 1] elseif m[i] == 'extra_tags' then tags = m[i + 1] end
  end
  if levels and not levels[level] then return false end
  if tag and not string.find(' ' .. tags .. ' ', tag, 1, true) then return false end
  return true
end
local rows, scanned = {}, 0
while #rows < limit and scanned < budget do
  local want = math.min(budget - scanned, math.max(limit - #rows, 10))
  local ids = redis.call('ZREVRANGEBYSCORE', KEYS[1], cursor, '-inf', 'LIMIT', 0, want)
  for _, id in ipairs(ids) do
    scanned = scanned + 1
    cursor = '(' .. id
    local e = redis.call('HMGET', ekey(id), 'u', 'm', 'c', 'r', 'a', 'e', 'x')
    if e[1] == uid and visible(e[7]) and in_state(e[4], e[5]) then
      local c = tonumber(e[3])
      if (not since or c >= since) and (not before or c < before) then
        local m = redis.call('HGETALL', mkey(e[2]))
        if #m > 0 and content_ok(m) then
          rows[#rows + 1] = {id, e, m}
          if claim then
            redis.call('HSET', ekey(id), 'r', NOW_S)
            reindex(id, uid, NOW_S, false, e[7])
          end
          if #rows >= limit then break end
        end
      end
    end
  end
  if #ids < want then
    cursor = ''
    break
  end
end
return {cursor, rows}
""",
    # ARGV: prefix, now, user, entry id.
    "get": """
local id = ARGV[4]
local e = redis.call('HMGET', ekey(id), 'u', 'm', 'c', 'r', 'a', 'e', 'x')
if e[1] ~= ARGV[3] or not visible(e[7]) then return false end
local m = redis.call('HGETALL', mkey(e[2]))
if #m == 0 then return false end
return {id, e, m}
""",
    # ARGV: prefix, now, user. The inbox in brief: the unread count, the highest
    # unread level, the user's change counter and time, the newest ids, and how
    # many entries (anyone's) have expired, since expiry changes lists unwritten.
    "state": """
local uid = ARGV[3]
local unread, top = 0, false
for _, id in ipairs(redis.call('ZRANGE', ukey(uid, 'unread'), 0, -1)) do
  local e = redis.call('HMGET', ekey(id), 'm', 'x')
  if visible(e[2]) then
    unread = unread + 1
    local level = tonumber(redis.call('HGET', mkey(e[1]), 'level') or '')
    if level and (not top or level > top) then top = level end
  end
end
local v = redis.call('HMGET', ukey(uid, 'v'), 'n', 't')
local last = redis.call('ZRANGE', ukey(uid, 'all'), -1, -1)
local last_archived = redis.call('ZRANGE', ukey(uid, 'archived'), -1, -1)
return {
  unread, top and string.format('%d', top) or '', v[1] or '0', v[2] or '',
  last[1] or '', last_archived[1] or '',
  redis.call('ZCOUNT', P .. ':expiring', '-inf', NOW_S),
}
""",
    # ARGV: prefix, now, user. The tabs of an inbox page: unread as count()
    # reads it, then every visible entry in and out of the archive.
    "counts": """
local uid = ARGV[3]
local result = {
  redis.call('ZCARD', ukey(uid, 'unread'))
    - redis.call('ZCOUNT', ukey(uid, 'unread_exp'), '-inf', NOW_S),
}
for _, name in ipairs({'all', 'archived'}) do
  local n = 0
  for _, id in ipairs(redis.call('ZRANGE', ukey(uid, name), 0, -1)) do
    if visible(redis.call('HGET', ekey(id), 'x')) then n = n + 1 end
  end
  result[#result + 1] = n
end
return result
""",
    # ARGV: prefix, now, user, operation, argument, '1' if strict, entry ids.
    # Strict, check that every id is one of the user's visible entries before
    # changing any: all or nothing. Lenient, skip the others.
    "change": """
local uid, op, arg = ARGV[3], ARGV[4], ARGV[5]
local lenient = ARGV[6] ~= '1'
local ids, states, missing = {}, {}, {}
for i = 7, #ARGV do
  local id = ARGV[i]
  local e = redis.call('HMGET', ekey(id), 'u', 'r', 'a', 'x')
  if e[1] == uid and visible(e[4]) then
    ids[#ids + 1] = id
    states[#ids] = e
  elseif not lenient then
    missing[#missing + 1] = id
  end
end
if #missing > 0 then return {'missing', missing} end
if op == 'delete' and arg ~= '1' then
  local unread = {}
  for i, id in ipairs(ids) do
    if not states[i][2] then unread[#unread + 1] = id end
  end
  if #unread > 0 then return {'unread', unread} end
end
local changed = {}
for i, id in ipairs(ids) do
  local r, a, x = states[i][2], states[i][3], states[i][4]
  local hit = false
  if op == 'read' then
    if not r then r = NOW_S; redis.call('HSET', ekey(id), 'r', r); hit = true end
  elseif op == 'unread' then
    if r then r = false; redis.call('HDEL', ekey(id), 'r'); hit = true end
  elseif op == 'archive' then
    if not a then a = NOW_S; redis.call('HSET', ekey(id), 'a', a); hit = true end
  elseif op == 'unarchive' then
    if a then a = false; redis.call('HDEL', ekey(id), 'a'); hit = true end
  elseif op == 'expire' then
    x = arg; redis.call('HSET', ekey(id), 'x', x); hit = true
  elseif op == 'delete' then
    remove_entry(id); hit = true
  end
  if hit then
    if op ~= 'delete' then reindex(id, uid, r, a, x) end
    changed[#changed + 1] = id
  end
end
return {'ok', changed}
""",
    # ARGV: prefix, now, user, highest id, created watermark|'', cursor, chunk.
    # Mark read one chunk of the user's unread entries, oldest first.
    "mark_all": """
local uid, before = ARGV[3], ARGV[5] ~= '' and tonumber(ARGV[5]) or false
local ids = redis.call(
  'ZRANGEBYSCORE', ukey(uid, 'unread'), ARGV[6], ARGV[4], 'LIMIT', 0, tonumber(ARGV[7]))
local changed = {}
for _, id in ipairs(ids) do
  local e = redis.call('HMGET', ekey(id), 'c', 'x', 'r', 'a')
  if visible(e[2]) and not e[3] and not e[4] and (not before or tonumber(e[1]) <= before) then
    redis.call('HSET', ekey(id), 'r', NOW_S)
    reindex(id, uid, NOW_S, false, e[2])
    changed[#changed + 1] = id
  end
end
return {#ids, ids[#ids] or '', changed}
""",
    # ARGV: prefix, now, chunk. Delete one chunk of expired entries.
    "purge_expired": """
local ids = redis.call(
  'ZRANGEBYSCORE', P .. ':expiring', '-inf', NOW_S, 'LIMIT', 0, tonumber(ARGV[3]))
local removed = 0
for _, id in ipairs(ids) do
  if remove_entry(id) then removed = removed + 1 end
end
return {#ids, removed}
""",
    # ARGV: prefix, now, read before (exclusive), chunk, '1' if expired ones count
    # as expired. Delete one chunk of entries read before the date.
    "purge_read": """
local ids = redis.call(
  'ZRANGEBYSCORE', P .. ':read', '-inf', '(' .. ARGV[3], 'LIMIT', 0, tonumber(ARGV[4]))
local read, expired = 0, 0
for _, id in ipairs(ids) do
  local x = redis.call('HGET', ekey(id), 'x')
  if remove_entry(id) then
    if ARGV[5] == '1' and not visible(x) then expired = expired + 1 else read = read + 1 end
  end
end
return {#ids, read, expired}
""",
    # ARGV: prefix, now, user id, chunk. Delete one chunk of a user's entries,
    # archived or not.
    "forget_user": """
local removed = 0
for _, name in ipairs({'all', 'archived'}) do
  local ids = redis.call('ZRANGE', ukey(ARGV[3], name), 0, tonumber(ARGV[4]) - 1)
  for _, id in ipairs(ids) do
    if remove_entry(id) then removed = removed + 1 end
    redis.call('ZREM', ukey(ARGV[3], name), id)  -- even an index member without its entry
  end
  if #ids > 0 then return {#ids, removed} end
end
for _, name in ipairs({'unread', 'unread_exp'}) do redis.call('DEL', ukey(ARGV[3], name)) end
return {0, removed}
""",
    # ARGV: prefix, now, oldest live send start, message ids. Delete contents
    # left without entries, except those a send still in progress is filling.
    # ARGV: prefix, now, message id, cursor (last id seen, '' to start), limit, budget.
    # The message's entries not yet emailed, in id order, read from the id
    # ranges its send reserved; return the cursor to go on from ('' at the end).
    "unmailed_for_message": """
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
    local e = redis.call('HMGET', ekey(id), 'u', 'm', 'c', 'r', 'a', 'e', 'x')
    if e[2] == mid and not e[6] and visible(e[7]) then rows[#rows + 1] = {id, e, m} end
  end
end
return {'', rows}
""",
    # ARGV: prefix, now, created cutoff, offset, limit. Unread entries not yet
    # emailed and created at or before the cutoff, oldest first.
    "unmailed_due": """
local ids = redis.call('ZRANGEBYSCORE', P .. ':unmailed', '-inf', ARGV[3],
  'LIMIT', tonumber(ARGV[4]), tonumber(ARGV[5]))
local rows = {}
for _, id in ipairs(ids) do
  local e = redis.call('HMGET', ekey(id), 'u', 'm', 'c', 'r', 'a', 'e', 'x')
  if e[1] and not e[4] and not e[5] and not e[6] and visible(e[7]) then
    local m = redis.call('HGETALL', mkey(e[2]))
    if #m > 0 then rows[#rows + 1] = {id, e, m} end
  end
end
return {#ids, rows}
""",
    # ARGV: prefix, now, entry ids. Stamp as emailed those visible entries not
    # stamped yet; return them. Whoever stamps an entry first is the one to email it.
    "claim_email": """
local claimed = {}
for i = 3, #ARGV do
  local id = ARGV[i]
  local e = redis.call('HMGET', ekey(id), 'u', 'e', 'x')
  if e[1] and not e[2] and visible(e[3]) then
    redis.call('HSET', ekey(id), 'e', NOW_S)
    redis.call('ZREM', P .. ':unmailed', id)
    claimed[#claimed + 1] = id
  end
end
return claimed
""",
    # ARGV: prefix, now, claim time, entry ids. Take back claims made at that
    # time (an email that could not be sent), so a retry or a digest sends it.
    "release_email": """
local released = {}
for i = 4, #ARGV do
  local id = ARGV[i]
  local e = redis.call('HMGET', ekey(id), 'u', 'e', 'r', 'a', 'c')
  if e[1] and e[2] == ARGV[3] then
    redis.call('HDEL', ekey(id), 'e')
    if not e[3] and not e[4] then redis.call('ZADD', P .. ':unmailed', e[5], id) end
    released[#released + 1] = id
  end
end
return released
""",
    "purge_orphans": """
local removed = 0
for i = 4, #ARGV do
  local mid = ARGV[i]
  local m = redis.call('HMGET', mkey(mid), 'refs', 'sending')
  if m[1] and tonumber(m[1]) > 0 then
    redis.call('SREM', P .. ':orphans', mid)
  elseif not m[2] or tonumber(m[2]) < tonumber(ARGV[3]) then
    removed = removed + redis.call('DEL', mkey(mid))
    redis.call('SREM', P .. ':orphans', mid)
  end
end
return removed
""",
}


def _redacted(url: str) -> str:
    """Return ``url`` with any password masked, fit for an error message or a log."""
    parts = urlsplit(url)
    if parts.password is not None:
        masked = f"{parts.username or ''}:***@{parts.netloc.rpartition('@')[2]}"
        url = url.replace(f"//{parts.netloc}", f"//{masked}", 1)
    if parts.query:
        query = "&".join(
            "password=***" if item.partition("=")[0].lower() == "password" else item
            for item in parts.query.split("&")
        )
        url = url.replace(f"?{parts.query}", f"?{query}", 1)
    return url


def _ts(value: datetime) -> str:
    """
    Return ``value`` as epoch seconds, the form Redis sorts and compares.

    ``repr()`` of the float keeps every microsecond: a float's spacing stays
    below half a microsecond until 2106, so the datetime comes back exact.
    """
    if timezone.is_naive(value):
        # What the ORM does with naive values when USE_TZ is off.
        value = timezone.make_aware(value, timezone.get_default_timezone())
    return repr(value.timestamp())


def _dt(raw: str | None) -> datetime | None:
    """Return epoch seconds as the datetime the database backend would return."""
    if not raw:
        return None
    value = datetime.fromtimestamp(float(raw), tz=UTC)
    if not settings.USE_TZ:
        value = timezone.make_naive(value, timezone.get_default_timezone())
    return value


def _json(value: Any) -> str:
    return json.dumps(value, cls=DjangoJSONEncoder, separators=(",", ":"))


def _content_fields(message: NewMessage, created: datetime) -> list[str]:
    """
    Return the content hash as field/value pairs, leaving out empty fields.

    Absent means empty, so a plain message costs only the fields it uses.
    """
    fields: dict[str, str] = {"level": str(int(message.level)), "created": _ts(created)}
    for name in ("message", "subject", "extra_tags", "url", "target_object_id", "category"):
        if value := getattr(message, name):
            fields[name] = str(value)
    if message.safe:
        fields["safe"] = "1"
    for name in (
        "data",
        "from_user_id",
        "target_content_type_id",
        "in_reply_to_id",
        "close_timeout",
        "email",
    ):
        value = getattr(message, name)
        if value is not None:
            fields[name] = _json(value)
    if message.expires is not None:
        fields["expires"] = _ts(message.expires)
    return [item for pair in fields.items() for item in pair]


def _load(content: dict[str, str], name: str) -> Any:
    raw = content.get(name)
    return None if raw is None else json.loads(raw)


class RedisBackend(BaseBackend):
    """
    Store messages in Redis.

    ``OPTIONS = {"url": "redis://host:6379/0"}``, plus ``key_prefix`` (two sites
    sharing one Redis need different ones) and the connection pool settings
    ``max_connections``, ``socket_timeout``, ``socket_connect_timeout`` and
    ``health_check_interval``. Nothing connects until the first call.
    """

    #: Prefix of every key, so several sites (or test runs) can share a database.
    key_prefix = "pigeonhole"
    #: Seconds to wait for a connection and for an answer; None waits for ever.
    socket_connect_timeout: float | None = 5.0
    socket_timeout: float | None = 5.0
    #: Recipients written per script during a send.
    chunk_size = 2000
    #: Entries one script looks at before handing back to Python, so a long
    #: scan (a filtered listing, a purge) never blocks Redis for long.
    scan_batch = 1000
    #: Seconds after which an unfinished send is taken to have died, so purge
    #: may collect its content.
    send_timeout = 3600

    def __init__(
        self, *, url: str | None = None, key_prefix: str | None = None, **options: Any
    ) -> None:
        unknown = sorted(set(options) - set(POOL_OPTIONS))
        if unknown:
            raise ImproperlyConfigured(
                f"RedisBackend got unknown option(s) {', '.join(unknown)} in "
                f"PIGEONHOLE['OPTIONS']; it takes url, key_prefix, {', '.join(POOL_OPTIONS)}."
            )
        if not url or not isinstance(url, str):
            raise ImproperlyConfigured(
                "RedisBackend needs the address of its Redis server: set "
                "PIGEONHOLE['OPTIONS'] = {'url': 'redis://localhost:6379/0'}."
            )
        if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
            raise ImproperlyConfigured(
                f"PIGEONHOLE['OPTIONS']['url'] = {_redacted(url)!r} is not a Redis URL; "
                "use redis://host:port/db, rediss:// for TLS, or unix:///path/to/socket."
            )
        if key_prefix is not None:
            self.key_prefix = key_prefix
        if not isinstance(self.key_prefix, str) or not self.key_prefix.strip():
            raise ImproperlyConfigured(
                "PIGEONHOLE['OPTIONS']['key_prefix'] must be a non-empty string such as 'mysite'."
            )
        super().__init__(url=url, key_prefix=self.key_prefix, **options)
        self.url = url
        self.pool_options = {
            "socket_connect_timeout": self.socket_connect_timeout,
            "socket_timeout": self.socket_timeout,
            **options,
        }
        self._client: redis.Redis | None = None
        self._scripts: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<RedisBackend {_redacted(self.url)} key_prefix={self.key_prefix!r}>"

    # Connection -------------------------------------------------------------
    def get_client(self) -> redis.Redis:
        """
        Return the client, building it and its pool on first use.

        One pool per backend instance, and ``conf.get_backend()`` keeps one
        instance per process: every request shares the same connections.
        """
        if self._client is None:
            with self._lock:
                if self._client is None:
                    client = redis.Redis.from_url(
                        self.url, decode_responses=True, **self.pool_options
                    )
                    # register_script only hashes the source: nothing is sent yet.
                    self._scripts = {
                        name: client.register_script(_PREAMBLE + source)
                        for name, source in _SCRIPTS.items()
                    }
                    self._client = client
        return self._client

    def close(self) -> None:
        """Close the pool's connections; the next call opens new ones."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn redis-py's errors into ``BackendUnavailable``, naming the server."""
        try:
            yield
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            reason = str(exc).rstrip(". ") or type(exc).__name__
            raise BackendUnavailable(
                f"The Redis message store at {_redacted(self.url)} cannot be reached: {reason}. "
                "Check that Redis is running and that PIGEONHOLE['OPTIONS']['url'] points at it."
            ) from exc
        except redis.RedisError as exc:
            reason = str(exc).rstrip(". ") or type(exc).__name__
            raise BackendUnavailable(
                f"The Redis message store at {_redacted(self.url)} refused a command: {reason}. "
                "Check the server's memory and role (a replica is read-only), and that no other "
                f"application writes keys under the prefix {self.key_prefix!r}."
            ) from exc

    def _run(self, name: str, args: Sequence[Any], keys: Sequence[str] = ()) -> Any:
        self.get_client()
        return self._scripts[name](keys=list(keys), args=[self.key_prefix, *args])

    def key(self, *parts: Any) -> str:
        """Return the key for ``parts`` under this backend's prefix."""
        return ":".join([self.key_prefix, *map(str, parts)])

    # Reading rows -----------------------------------------------------------
    def _stored(self, user_id: Any, row: Sequence[Any]) -> StoredMessage:
        entry_id, entry, flat = row
        fields = dict(zip(ENTRY_FIELDS, entry, strict=True))
        content = dict(zip(flat[::2], flat[1::2], strict=True))
        return StoredMessage(
            id=int(entry_id),
            message_id=int(fields["m"]),
            user_id=user_id,
            created=_dt(fields["c"]),
            read_at=_dt(fields["r"]),
            archived_at=_dt(fields["a"]),
            emailed_at=_dt(fields["e"]),
            expires=_dt(fields["x"]),
            level=int(content["level"]),
            message=content.get("message", ""),
            extra_tags=content.get("extra_tags", ""),
            subject=content.get("subject", ""),
            url=content.get("url", ""),
            data=_load(content, "data"),
            safe=content.get("safe") == "1",
            from_user_id=_load(content, "from_user_id"),
            target_content_type_id=_load(content, "target_content_type_id"),
            target_object_id=content.get("target_object_id", ""),
            in_reply_to_id=_load(content, "in_reply_to_id"),
            close_timeout=_load(content, "close_timeout"),
            category=content.get("category"),
            email=_load(content, "email"),
        )

    # Writing ----------------------------------------------------------------
    def _send(self, message: NewMessage, recipients: Recipients) -> SentMessage:
        """
        Store the content once, then give recipients entries a chunk at a time.

        Each chunk is atomic. If the send fails part way (the recipients query
        raises, Redis goes away), the entries written so far and the content
        are taken back, as far as Redis still answers.
        """
        created = message.created or timezone.now()
        expires = "" if message.expires is None else _ts(message.expires)
        if recipients.queryset is not None:
            queryset = recipients.queryset
            if queryset.query.is_sliced:
                # A slice cannot be made distinct: take its ids.
                ids = queryset.values_list("pk", flat=True)
                recipients = Recipients(ids=list(dict.fromkeys(ids)))
            else:
                # Groups can name a user twice; the database makes them distinct.
                recipients = Recipients(queryset=queryset.order_by().distinct())
        with self._errors():
            mid = self._run("create", [_ts(timezone.now()), *_content_fields(message, created)])
        written: list[tuple[int, int]] = []
        count = 0
        try:
            with self._errors():
                client = self.get_client()
                for chunk in recipients.iter_ids(self.chunk_size):
                    # Reserve the ids first, so a failure knows which to take back.
                    first = client.incrby(self.key("ids", "entry"), len(chunk)) - len(chunk) + 1
                    written.append((first, len(chunk)))
                    count += self._run(
                        "fanout",
                        [_ts(timezone.now()), mid, _ts(created), expires, first, *map(str, chunk)],
                    )
                self._run("finish", [_ts(timezone.now()), mid])
        except BaseException:
            self._withdraw(mid, written)
            raise
        return SentMessage(id=int(mid), recipient_count=count)

    def _withdraw(self, mid: Any, written: Sequence[tuple[int, int]]) -> None:
        """Take back a failed send, as far as Redis still answers."""
        try:
            now = _ts(timezone.now())
            for first, size in written:
                self._run("withdraw", [now, mid, first, size])
            self._run("drop_message", [now, mid])
        except redis.RedisError:
            # The original error is the one worth raising; the content stays
            # flagged as sending, and purge collects it once send_timeout passes.
            pass

    def _add(self, message: NewMessage, user_id: Any) -> StoredMessage:
        created = message.created or timezone.now()
        with self._errors():
            mid, entry_id = self._run(
                "add",
                [
                    _ts(timezone.now()),
                    _ts(created),
                    "" if message.expires is None else _ts(message.expires),
                    str(user_id),
                    *_content_fields(message, created),
                ],
            )
        return StoredMessage.from_new(
            message,
            id=int(entry_id),
            message_id=int(mid),
            user_id=user_id,
            created=_dt(_ts(created)),
            expires=_dt(_ts(message.expires)) if message.expires is not None else None,
        )

    # Reading ----------------------------------------------------------------
    def _list(self, user_id: Any, query: InboxQuery) -> list[StoredMessage]:
        """
        Return the user's entries, newest first, keyset-paged by ``after``.

        Without filters this reads ``limit`` entries and their contents in one
        round trip; filters are applied inside Redis, which scans on in
        batches of ``scan_batch`` until ``limit`` entries match.
        """
        return self._scan(user_id, query, timezone.now())

    def _scan(self, user_id: Any, query: InboxQuery, now: datetime) -> list[StoredMessage]:
        """Run the listing script; the state ``claim`` also marks what it reads read."""
        state, limit = query.state, query.limit
        zset = _STATE_ZSETS[state]
        cursor = "+inf" if query.after is None else f"({int(query.after)}"
        args = [
            _ts(now),
            str(user_id),
            state,
            None,  # the cursor, filled in each round
            None,  # how many rows are still wanted
            self.scan_batch,
            "" if query.since is None else _ts(query.since),
            "" if query.before is None else _ts(query.before),
            query.tag or "",
            *(str(int(level)) for level in query.levels or ()),
        ]
        rows: list[Any] = []
        with self._errors():
            while len(rows) < limit and cursor:
                args[3], args[4] = cursor, limit - len(rows)
                cursor, found = self._run("list", args, keys=[self.key("u", user_id, zset)])
                rows += found
        return [self._stored(user_id, row) for row in rows]

    def _claim_unread(self, user_id: Any, limit: int, now: datetime) -> list[StoredMessage]:
        """
        Read the newest unread entries and mark them read in one script.

        Another round trip only when more than ``scan_batch`` expired entries
        sit among the unread ones, as with ``_list()``.
        """
        return self._scan(user_id, InboxQuery("claim", limit=limit), now)

    def _get(self, user_id: Any, entry_id: Any) -> StoredMessage | None:
        with self._errors():
            row = self._run("get", [_ts(timezone.now()), str(user_id), str(entry_id)])
        return self._stored(user_id, row) if row else None

    def _count(self, user_id: Any) -> int:
        """
        Return the unread count: the unread set's size less its expired members.

        Both are O(log n), so a user with thousands of unread entries costs no
        more than one with three; MULTI reads both at the same instant.
        """
        with self._errors():
            pipe = self.get_client().pipeline(transaction=True)
            pipe.zcard(self.key("u", user_id, "unread"))
            pipe.zcount(self.key("u", user_id, "unread_exp"), "-inf", _ts(timezone.now()))
            total, expired = pipe.execute()
        return total - expired

    def _counts(self, user_id: Any) -> dict[str, int]:
        """
        Count the three tabs in one script.

        Entries carry their expiry, so ``all`` and ``archived`` look at each of
        the user's entries: fine for a page a user opens, which is all this is for.
        """
        with self._errors():
            unread, all_, archived = self._run("counts", [_ts(timezone.now()), str(user_id)])
        return {"unread": int(unread), "all": int(all_), "archived": int(archived)}

    def state(self, user_id: Any) -> InboxState:
        """
        Return the inbox in brief with one script.

        Every script that changes a user's entries bumps that user's change
        counter, which makes the version; the highest unread level takes a look
        at each unread entry, which stays cheap as long as people read.
        """
        with self._errors():
            unread, top, changes, when, last, last_archived, expired = self._run(
                "state", [_ts(timezone.now()), str(user_id)]
            )
        key = f"{changes}|{last}|{last_archived}|{expired}"
        return InboxState(
            unread=int(unread),
            max_level=int(top) if top else None,
            version=hashlib.sha256(key.encode()).hexdigest()[:32],
            modified=_dt(when),
        )

    # Changing state ---------------------------------------------------------
    def _change(self, user_id: Any, change: Change) -> Outcome:
        """
        Apply the change to the user's entries in one script.

        The script checks ownership and visibility itself, in the same atomic
        step as the change: nothing can slip in between the check and the write.
        Report the ids changed newest first, as the database backend does.
        """
        given = {str(pk): pk for pk in change.ids}
        if change.action == "expire":
            arg = _ts(change.expires)
        else:
            arg = "1" if change.allow_unread else ""
        args = [_ts(change.now), str(user_id), change.action, arg, "1" if change.strict else ""]
        with self._errors():
            status, result = self._run("change", [*args, *given])
        if status == "missing":
            return Outcome([], missing=[given[pk] for pk in result])
        if status == "unread":
            return Outcome([], unread=[int(pk) for pk in result])
        return Outcome(sorted((int(pk) for pk in result), reverse=True))

    def _mark_all_read(self, user_id: Any, before: Any, now: datetime) -> list[Any]:
        """
        Mark read the user's unread, unarchived entries up to a watermark.

        The entries are marked a chunk per script, oldest first, up to the
        highest entry id handed out when the call began: one that arrives
        meanwhile stays unread, however long a big inbox takes.
        """
        now = _ts(now)
        created_before = ""
        changed: list[Any] = []
        with self._errors():
            if isinstance(before, datetime):
                created_before = _ts(before)
                highest = self.get_client().get(self.key("ids", "entry")) or "0"
            elif before is not None:
                highest = str(int(before))
            else:
                highest = self.get_client().get(self.key("ids", "entry")) or "0"
            cursor = "-inf"
            while True:
                scanned, last, ids = self._run(
                    "mark_all",
                    [now, str(user_id), highest, created_before, cursor, self.scan_batch],
                )
                changed += ids
                if scanned < self.scan_batch:
                    break
                cursor = f"({last}"
        return sorted((int(pk) for pk in changed), reverse=True)

    # Housekeeping -----------------------------------------------------------
    def purge(
        self,
        *,
        expired: bool = True,
        read_before: datetime | None = None,
        dry_run: bool = False,
    ) -> dict[str, int]:
        """
        Remove expired entries, read ones older than ``read_before``, then
        contents left without entries.

        Each script removes at most ``scan_batch`` entries, so purging millions
        never blocks Redis for long. A dry run reads what a purge would remove
        and removes nothing.
        """
        now = _ts(timezone.now())
        counts = {"expired": 0, "read": 0, "messages": 0}
        with self._errors():
            if dry_run:
                return self._dry_run(now, expired, read_before)
            if expired:
                while True:
                    scanned, removed = self._run("purge_expired", [now, self.scan_batch])
                    counts["expired"] += removed
                    if scanned < self.scan_batch:
                        break
            if read_before is not None:
                while True:
                    scanned, read, gone = self._run(
                        "purge_read",
                        [now, _ts(read_before), self.scan_batch, "1" if expired else ""],
                    )
                    counts["read"] += read
                    counts["expired"] += gone
                    if scanned < self.scan_batch:
                        break
            oldest_live_send = repr(float(now) - self.send_timeout)
            client = self.get_client()
            batch: list[str] = []
            for mid in client.sscan_iter(self.key("orphans"), count=self.scan_batch):
                batch.append(mid)
                if len(batch) >= self.scan_batch:
                    counts["messages"] += self._run(
                        "purge_orphans", [now, oldest_live_send, *batch]
                    )
                    batch = []
            if batch:
                counts["messages"] += self._run("purge_orphans", [now, oldest_live_send, *batch])
        return counts

    # Email ------------------------------------------------------------------
    def _stored_any(self, row: Sequence[Any]) -> StoredMessage:
        """Build the entry of a row whose user the caller did not name."""
        raw = row[1][0]
        return self._stored(int(raw) if raw.isdigit() else raw, row)

    def unmailed_for_message(
        self, message_id: Any, *, after: Any = None, limit: int = 500
    ) -> list[StoredMessage]:
        """
        Return the message's entries not emailed yet, read from the id ranges
        its send reserved (kept in the content hash as ``ranges``).
        """
        cursor = "" if after is None else str(int(after))
        rows: list[Any] = []
        with self._errors():
            while len(rows) < limit:
                cursor, found = self._run(
                    "unmailed_for_message",
                    [
                        _ts(timezone.now()),
                        str(message_id),
                        cursor,
                        limit - len(rows),
                        self.scan_batch,
                    ],
                )
                rows += found
                if not cursor:
                    break
        return [self._stored_any(row) for row in rows]

    def unmailed_due(
        self, created_before: datetime, *, limit: int = 500, offset: int = 0
    ) -> list[StoredMessage]:
        """Read the ``unmailed`` index (unread entries not emailed, by creation time)."""
        rows: list[Any] = []
        with self._errors():
            while len(rows) < limit:
                want = min(self.scan_batch, limit - len(rows))
                scanned, found = self._run(
                    "unmailed_due", [_ts(timezone.now()), _ts(created_before), offset, want]
                )
                rows += found
                offset += scanned
                if scanned < want:
                    break
        return [self._stored_any(row) for row in rows]

    def claim_email(self, ids: Sequence[Any], when: datetime) -> list[Any]:
        if not ids:
            return []
        with self._errors():
            claimed = self._run("claim_email", [_ts(when), *map(str, ids)])
        return [int(pk) for pk in claimed]

    def release_email(self, ids: Sequence[Any], when: datetime) -> list[Any]:
        if not ids:
            return []
        now = _ts(timezone.now())
        with self._errors():
            released = self._run("release_email", [now, _ts(when), *map(str, ids)])
        return [int(pk) for pk in released]

    def forget_user(self, user_id: Any) -> int:
        """Delete the user's entries one bounded script at a time, as purge() does."""
        removed = 0
        now = _ts(timezone.now())
        with self._errors():
            while True:
                scanned, gone = self._run("forget_user", [now, str(user_id), self.scan_batch])
                removed += gone
                if scanned == 0:
                    return removed

    def _members(self, key: str, low: str, high: str) -> list[str]:
        """Return a sorted set's members scored from ``low`` to ``high``, in batches."""
        client, found, offset = self.get_client(), [], 0
        while batch := client.zrangebyscore(key, low, high, start=offset, num=self.scan_batch):
            found += batch
            offset += len(batch)
        return found

    def _dry_run(self, now: str, expired: bool, read_before: datetime | None) -> dict[str, int]:
        client = self.get_client()
        doomed_expired = set(self._members(self.key("expiring"), "-inf", now)) if expired else set()
        doomed_read: set[str] = set()
        if read_before is not None:
            doomed_read = set(self._members(self.key("read"), "-inf", f"({_ts(read_before)}"))
            doomed_read -= doomed_expired
        doomed = sorted(doomed_expired | doomed_read)
        # Contents that would lose their last entry, and those that have none already.
        losing: Counter[str] = Counter()
        for start in range(0, len(doomed), self.scan_batch):
            pipe = client.pipeline(transaction=False)
            for entry_id in doomed[start : start + self.scan_batch]:
                pipe.hget(self.key("e", entry_id), "m")
            losing.update(mid for mid in pipe.execute() if mid is not None)
        oldest_live_send = float(now) - self.send_timeout
        orphans = client.sscan_iter(self.key("orphans"), count=self.scan_batch)
        candidates = list(dict.fromkeys([*losing, *orphans]))
        messages = 0
        for start in range(0, len(candidates), self.scan_batch):
            chunk = candidates[start : start + self.scan_batch]
            pipe = client.pipeline(transaction=False)
            for mid in chunk:
                pipe.hmget(self.key("m", mid), "refs", "sending")
            for mid, (refs, sending) in zip(chunk, pipe.execute(), strict=True):
                if refs is None or int(refs) > losing[mid]:
                    continue
                if sending is None or float(sending) < oldest_live_send:
                    messages += 1
        return {
            "expired": len(doomed_expired),
            "read": len(doomed_read),
            "messages": messages,
        }
