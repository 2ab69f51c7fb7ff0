"""The Lua scripts that keep shared state consistent in Redis.

Each runs atomically on the server. The time comes from the caller
(``ARGV[1]``, seconds since the epoch from the loop's wall clock), so that
virtual time drives shared state in tests as it drives everything else; hosts'
clocks must agree (NTP) to well within an open period or a rate interval. Times
leave a script as seconds *from now* (strings, as Redis truncates Lua numbers to
integers), which each process adds to its own loop clock.
"""

from __future__ import annotations

from typing import Final

__all__ = ["BREAKER_PROBE", "BREAKER_RELEASE", "BREAKER_RESULT", "BREAKER_SYNC", "BUDGET", "GCRA"]

_NOW: Final = """
-- ARGV[1] is the caller's wall clock; A holds the script's own arguments.
local now = tonumber(ARGV[1])
local A = {}
for i = 2, #ARGV do A[i - 1] = ARGV[i] end
"""

_BREAKER_HEAD: Final = (
    _NOW
    + """
local h, w = KEYS[1], KEYS[2]
local s = redis.call('HMGET', h, 'state', 'gen', 'open_until', 'in_a_row', 'started', 'since',
                     'done', 'pf', 'ps')
local state = s[1] or 'closed'
local gen = tonumber(s[2] or '0')
local open_until = tonumber(s[3] or '0')
local in_a_row = tonumber(s[4] or '0')
local started = tonumber(s[5] or '0')
local since = tonumber(s[6] or '0')
local done, pf, ps = tonumber(s[7] or '0'), tonumber(s[8] or '0'), tonumber(s[9] or '0')

local function open_for(first)
  -- A[first..] are the open durations of the 1st, 2nd, ... opening in a row.
  local n = #A - first + 1
  return tonumber(A[first + math.min(in_a_row, n) - 1])
end

local function move(new, first)
  gen = gen + 1
  state = new
  started, done, pf, ps = 0, 0, 0, 0
  if new == 'open' then
    in_a_row = in_a_row + 1
    open_until = now + open_for(first)
  elseif new == 'half_open' then
    since = now
  else
    in_a_row = 0
    redis.call('DEL', w)
  end
  redis.call('HSET', h, 'state', state, 'gen', gen, 'open_until', string.format('%.6f', open_until),
             'in_a_row', in_a_row, 'started', 0, 'since', string.format('%.6f', since),
             'done', 0, 'pf', 0, 'ps', 0)
end

local function reply(extra, calls, failures, slow)
  local remaining = 0
  if state == 'open' then remaining = math.max(0, open_until - now) end
  return {state, gen, string.format('%.6f', remaining), extra or 0, calls or 0, failures or 0,
          slow or 0}
end
"""
)

BREAKER_SYNC: Final = (
    _BREAKER_HEAD
    + """
-- A: 1 gen the counts belong to, 2 calls, 3 failures, 4 slow calls, 5 failure rate,
-- 6 slow-call rate, 7 min calls, 8 window seconds, 9 buckets, 10 ttl, 11.. open durations
local ttl = tonumber(A[10])
local tc, tf, ts = 0, 0, 0
if state == 'closed' and tonumber(A[1]) == gen then
  local width = tonumber(A[8]) / tonumber(A[9])
  local nb = tonumber(A[9])
  local bucket = math.floor(now / width)
  local calls, fails, slow = tonumber(A[2]), tonumber(A[3]), tonumber(A[4])
  if calls > 0 then
    redis.call('HINCRBY', w, 'c' .. bucket, calls)
    if fails > 0 then redis.call('HINCRBY', w, 'f' .. bucket, fails) end
    if slow > 0 then redis.call('HINCRBY', w, 's' .. bucket, slow) end
    redis.call('EXPIRE', w, ttl)
  end
  local all = redis.call('HGETALL', w)
  for i = 1, #all, 2 do
    local field = all[i]
    local b = tonumber(string.sub(field, 2))
    if b <= bucket - nb then
      redis.call('HDEL', w, field)
    else
      local kind, v = string.sub(field, 1, 1), tonumber(all[i + 1])
      if kind == 'c' then tc = tc + v elseif kind == 'f' then tf = tf + v else ts = ts + v end
    end
  end
  if tc >= tonumber(A[7]) and tc > 0
     and (tf >= tonumber(A[5]) * tc or ts >= tonumber(A[6]) * tc) then
    move('open', 11)
  end
end
if redis.call('EXISTS', h) == 1 then redis.call('EXPIRE', h, ttl) end
-- The fleet's window, so that each process can tell when its own failures would trip it.
return reply(0, tc, tf, ts)
"""
)

BREAKER_PROBE: Final = (
    _BREAKER_HEAD
    + """
-- A: 1 probes allowed in half-open, 2 longest half-open wait (< 0: none), 3 ttl,
-- 4.. open durations
local granted = 0
if state == 'open' and now >= open_until then move('half_open', 4) end
if state == 'half_open' then
  local wait = tonumber(A[2])
  if wait >= 0 and now - since >= wait then
    move('open', 4)
  elseif started < tonumber(A[1]) then
    started = started + 1
    redis.call('HSET', h, 'started', started)
    granted = 1
  end
end
if redis.call('EXISTS', h) == 1 then redis.call('EXPIRE', h, tonumber(A[3])) end
return reply(granted)
"""
)

BREAKER_RESULT: Final = (
    _BREAKER_HEAD
    + """
-- A: 1 gen of the probe, 2 failed (0/1), 3 slow (0/1), 4 probes allowed, 5 failure rate,
-- 6 slow-call rate, 7 ttl, 8.. open durations
if state == 'half_open' and tonumber(A[1]) == gen then
  done = done + 1
  pf = pf + tonumber(A[2])
  ps = ps + tonumber(A[3])
  redis.call('HSET', h, 'done', done, 'pf', pf, 'ps', ps)
  if done >= tonumber(A[4]) then
    if pf >= tonumber(A[5]) * done or ps >= tonumber(A[6]) * done then
      move('open', 8)
    else
      move('closed', 8)
    end
  end
end
if redis.call('EXISTS', h) == 1 then redis.call('EXPIRE', h, tonumber(A[7])) end
return reply()
"""
)

BREAKER_RELEASE: Final = """
-- A probe ended without an outcome (cancelled): free its slot. ARGV: 1 gen of the probe
local s = redis.call('HMGET', KEYS[1], 'state', 'gen', 'started')
if s[1] == 'half_open' and s[2] == ARGV[1] and tonumber(s[3] or '0') > 0 then
  redis.call('HINCRBY', KEYS[1], 'started', -1)
end
return 0
"""

BUDGET: Final = """
-- A retry budget's tokens. ARGV: 1 successes, 2 retries taken, 3 ratio, 4 max tokens, 5 ttl
local max = tonumber(ARGV[4])
local tokens = tonumber(redis.call('GET', KEYS[1]) or tostring(max))
tokens = tokens + tonumber(ARGV[1]) * tonumber(ARGV[3]) - tonumber(ARGV[2])
if tokens > max then tokens = max end
if tokens < 0 then tokens = 0 end
redis.call('SET', KEYS[1], string.format('%.6f', tokens), 'EX', tonumber(ARGV[5]))
return string.format('%.6f', tokens)
"""

GCRA: Final = (
    _NOW
    + """
-- One slot of a rate limiter (GCRA). A: 1 emission interval, 2 tolerance (burst),
-- 3 ttl. Returns {1, '0'} when the call may go now, else {0, seconds until it may}.
local interval, tolerance = tonumber(A[1]), tonumber(A[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local allow_at = tat - tolerance
if now + 0.000001 >= allow_at then
  redis.call('SET', KEYS[1], string.format('%.6f', tat + interval), 'EX', tonumber(A[3]))
  return {1, '0'}
end
return {0, string.format('%.6f', allow_at - now)}
"""
)
