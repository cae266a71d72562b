/**
 * The Redis limiter's data layout and its Lua scripts (see redis.ts for the limiter around them).
 * Every limiter operation is one script, so it runs atomically on the Redis server, with one round
 * trip for all the rules and series of a call.
 *
 * Per series, under the key prefix (all integers, written as exact decimal strings):
 *   s:<series>  hash    cum (running total after the newest event), held (sum of open holds),
 *                       base (running total of the events trimmed away), last (newest event's
 *                       time), first (oldest stored event's time), exp (when all five keys
 *                       expire), h:<hold id> → held amount for each open hold, and
 *                       x:<hold id> → held amount for each remembered expired hold
 *   t:<series>  zset    the counted events by time: score = ts, member = the running total
 *                       before the event
 *   c:<series>  zset    the same events by total: score = running total after, member = ts
 *   h:<series>  zset    open holds by expiry: score = expires at, member = hold id
 *   x:<series>  zset    holds that expired unsettled, remembered for a late commit: score =
 *                       when it expired, member = hold id (EXPIRED_HOLD_MEMORY_MS after its
 *                       expiry it is forgotten, and past EXPIRED_HOLDS_KEPT the oldest are)
 * Events of one series in one millisecond are one entry (no window can tell them apart), so both
 * the times and the totals are strictly increasing and every lookup is one O(log n) seek: the
 * first event inside a window, `ZRANGEBYSCORE t (<outside> +inf LIMIT 0 1`, gives the window's
 * edge total (its total before) and its oldest time at once; "when will enough have left" is
 * `ZRANGEBYSCORE c <total> +inf LIMIT 0 1`.
 *
 * Expiry: the five keys of a series always expire together, at `exp` (PEXPIREAT, server time),
 * at least a horizon (or a hold's lifetime and the time its expiry is remembered) after the last
 * write; a write moves `exp` on at most once a minute, and a key a write creates gets the same
 * `exp` at once. So a series never loses its events or holds while its totals live on, or the
 * other way round.
 *
 * Numbers: Lua numbers and sorted-set scores are doubles, exact for integers up to 2^53 - 1.
 * Times are milliseconds (~2^41). Totals are tokens or micro-dollars counted since the series'
 * keys were created, and the keys expire after a horizon without writes: 2^53 micro-dollars are
 * $9 billion, 2^53 tokens 9 × 10^15. A write after which the total plus the held amounts (the
 * largest sum a script forms) would pass 2^53 - 1 is refused with an error
 * (PROXYGPT_TOTAL_OVERFLOW) before anything is written, never rounded. `string.format('%d')`
 * (not `tostring`, which rounds to 14 digits) turns numbers into strings.
 */

import { EXPIRED_HOLD_MEMORY_MS, EXPIRED_HOLDS_KEPT } from './limiter.js';

/** The keys of one series, in the order every script takes them. */
export function seriesKeys(prefix: string, series: string): [state: string, byTime: string, byTotal: string, holds: string, expired: string] {
  return [`${prefix}s:${series}`, `${prefix}t:${series}`, `${prefix}c:${series}`, `${prefix}h:${series}`, `${prefix}x:${series}`];
}
/** How many keys each series passes to a script. */
const KEYS_PER_SERIES = 5;
/** The part of a series' state key between the prefix and the series name. */
export const STATE_KEY_TAG = 's:';

/** Events trimmed per series per script at most (a long idle series is trimmed over several writes). */
export const TRIM_CHUNK = 1000;
/** A series' expiry moves on at most this often (its keys live up to twice this past their horizon). */
export const EXPIRY_REFRESH_MS = 60_000;

const PRELUDE = `
local MAX_TOTAL = 9007199254740991
local TRIM_CHUNK = ${TRIM_CHUNK}
local BATCH = 500
local REFRESH = ${EXPIRY_REFRESH_MS}
local MEMORY = ${EXPIRED_HOLD_MEMORY_MS}
local KEPT = ${EXPIRED_HOLDS_KEPT}
local PER = ${KEYS_PER_SERIES}

local function int(x) return string.format('%d', x) end

local function server_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The caller's clock when it sent one, else the server's: one clock for every instance.
local function clock(arg)
  if arg ~= '' then return tonumber(arg) end
  return server_ms()
end

-- Days since 1970-01-01 of a civil date and back (H. Hinnant's algorithms; proleptic Gregorian).
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local doy = math.floor((153 * ((m + 9) % 12) + 2) / 5) + d - 1
  return era * 146097 + yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy - 719468
end
local function civil_from_days(z)
  z = z + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return y, m
end
-- Start of the calendar month (UTC) containing now, in ms.
local function month_start(now)
  local y, m = civil_from_days(math.floor(now / 86400000))
  return days_from_civil(y, m, 1) * 86400000
end

-- Series i: its keys from KEYS[PER * (i - 1) + 1 ..] and its hash fields.
local function open(i)
  local k = PER * (i - 1) + 1
  local v = redis.call('HMGET', KEYS[k], 'cum', 'held', 'base', 'last', 'first', 'exp')
  return { s = KEYS[k], t = KEYS[k + 1], c = KEYS[k + 2], h = KEYS[k + 3], x = KEYS[k + 4],
    cum = tonumber(v[1]) or 0, held = tonumber(v[2]) or 0, base = tonumber(v[3]) or 0, last = tonumber(v[4]) or 0,
    first = tonumber(v[5]), exp = tonumber(v[6]) }
end

-- Forgets remembered expired holds: these ids' (a batch at most).
local function drop_expired(S, ids)
  local fields = {}
  for i, id in ipairs(ids) do fields[i] = 'x:' .. id end
  redis.call('HDEL', S.s, unpack(fields))
  redis.call('ZREM', S.x, unpack(ids))
end

-- Forgets the expired holds remembered for MEMORY already, then the oldest past KEPT.
local function forget(S, now)
  while true do
    local ids = redis.call('ZRANGEBYSCORE', S.x, '-inf', int(now - MEMORY), 'LIMIT', 0, BATCH)
    if #ids == 0 then break end
    drop_expired(S, ids)
  end
  while true do
    local excess = redis.call('ZCARD', S.x) - KEPT
    if excess <= 0 then break end
    drop_expired(S, redis.call('ZRANGE', S.x, 0, math.min(excess, BATCH) - 1))
  end
end

-- Drops the holds whose time is up (expiry at or before now): a crashed instance's holds end by
-- themselves. Each hold is dropped once, so this is O(1) per hold over time. A dropped hold stops
-- counting but is remembered in x (for a late commit). Returns how many.
local function purge(S, now)
  if S.held <= 0 then return 0 end -- no open holds (every hold holds more than 0)
  local count = 0
  while true do
    local due = redis.call('ZRANGEBYSCORE', S.h, '-inf', int(now), 'WITHSCORES', 'LIMIT', 0, BATCH)
    if #due == 0 then break end
    local ids, fields = {}, {}
    for i = 1, #due, 2 do
      ids[#ids + 1] = due[i]
      fields[#fields + 1] = 'h:' .. due[i]
    end
    local total, amounts, marks = 0, {}, {}
    for i, amount in ipairs(redis.call('HMGET', S.s, unpack(fields))) do
      if tonumber(amount) then
        total = total + tonumber(amount)
        table.insert(amounts, 'x:' .. ids[i])
        table.insert(amounts, amount)
        table.insert(marks, due[2 * i])
        table.insert(marks, ids[i])
      end
    end
    redis.call('HDEL', S.s, unpack(fields))
    redis.call('ZREM', S.h, unpack(ids))
    if #marks > 0 then
      redis.call('HSET', S.s, unpack(amounts))
      redis.call('ZADD', S.x, unpack(marks))
    end
    S.held = math.max(0, S.held - total)
    count = count + #ids
  end
  if count > 0 then
    redis.call('HSET', S.s, 'held', int(S.held))
    if S.exp then redis.call('PEXPIREAT', S.x, int(S.exp)) end -- created with the others' expiry
    forget(S, now)
  end
  return count
end

-- A window's trailing edge (the running total after the last event at or before outside) and
-- the time of its oldest event (nil when it holds none): both from the first event after outside.
local function window(S, outside)
  local e = redis.call('ZRANGEBYSCORE', S.t, '(' .. int(outside), '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  if e[1] then return tonumber(e[1]), tonumber(e[2]) end
  return S.cum, nil
end

-- Time of the first event whose running total reaches cum, or nil.
local function first_ts_at(S, cum)
  local e = redis.call('ZRANGEBYSCORE', S.c, int(cum), '+inf', 'LIMIT', 0, 1)
  if e[1] then return tonumber(e[1]) end
  return nil
end

-- Counts an event; times never go back within a series (a clock behind the newest event counts
-- at that event's time, as the SQLite limiter does).
local function append(S, amount, now)
  if amount <= 0 then return end
  local ts = math.max(now, S.last)
  local cum = S.cum + amount
  if S.cum == S.base then -- no stored events: this one is the first (and creates t and c)
    redis.call('ZADD', S.t, int(ts), int(S.cum))
    S.first = ts
    S.created_tc = true
    redis.call('HSET', S.s, 'first', int(ts))
  elseif ts ~= S.last then
    redis.call('ZADD', S.t, int(ts), int(S.cum))
  end -- else the same millisecond as the newest event: one entry, whose total before stays
  redis.call('ZADD', S.c, int(cum), int(ts))
  redis.call('HSET', S.s, 'cum', int(cum), 'last', int(ts))
  S.cum = cum
  S.last = ts
end

-- Deletes events no window can see any more (at or before now - horizon), at most TRIM_CHUNK,
-- keeping base the total after the last one deleted, so every window's edge stays exact.
-- Returns how many were deleted and whether more are due.
local function trim(S, now, horizon)
  local cut = now - horizon
  if S.first == nil or S.first > cut then return 0, false end
  local nth = redis.call('ZRANGE', S.t, TRIM_CHUNK - 1, TRIM_CHUNK - 1, 'WITHSCORES')
  local removed, more
  if nth[1] and tonumber(nth[2]) <= cut then
    redis.call('ZREMRANGEBYRANK', S.t, 0, TRIM_CHUNK - 1)
    removed, more = TRIM_CHUNK, true
  else
    removed, more = redis.call('ZREMRANGEBYSCORE', S.t, '-inf', int(cut)), false
  end
  local head = redis.call('ZRANGE', S.t, 0, 0, 'WITHSCORES')
  if head[1] then
    S.base, S.first = tonumber(head[1]), tonumber(head[2])
    redis.call('HSET', S.s, 'base', int(S.base), 'first', int(S.first))
  else
    S.base, S.first = S.cum, nil
    redis.call('HSET', S.s, 'base', int(S.base))
    redis.call('HDEL', S.s, 'first')
  end
  redis.call('ZREMRANGEBYSCORE', S.c, '-inf', int(S.base))
  return removed, more
end

-- After a write: the five keys expire together, at least ttl after now (server time). exp moves
-- on at most every REFRESH ms; a key this write created joins the current exp at once.
local function expire(S, ttl, real_now)
  if S.exp == nil or S.exp < real_now + ttl + REFRESH then
    S.exp = real_now + ttl + 2 * REFRESH
    redis.call('HSET', S.s, 'exp', int(S.exp))
    for _, key in ipairs({ S.s, S.t, S.c, S.h, S.x }) do redis.call('PEXPIREAT', key, int(S.exp)) end
    return
  end
  if S.created_tc then
    redis.call('PEXPIREAT', S.t, int(S.exp))
    redis.call('PEXPIREAT', S.c, int(S.exp))
  end
  if S.created_h then redis.call('PEXPIREAT', S.h, int(S.exp)) end
end
`;

/**
 * reserve (and peek, with no costs).
 * KEYS: 5 per series. ARGV: now ('' = server time), hold ttl, hold id, series count, then per
 * series: amount, held (1/0), horizon, key ttl (ms); rule count, then per rule: series number
 * (1-based), limit, window ms, calendar month (1/0).
 * Returns: now, admitted (1/0), per rule: edge total, has oldest (1/0), oldest ts, has retry
 * (1/0), retry ts (the first event whose total reaches what must leave); then per series (before
 * this call's writes): cum, held, last.
 */
export const RESERVE_LUA = `${PRELUDE}
local now = clock(ARGV[1])
local hold_ttl = tonumber(ARGV[2])
local id = ARGV[3]
local series = {}
local a = 5
for i = 1, tonumber(ARGV[4]) do
  local S = open(i)
  S.amount, S.hold, S.horizon, S.ttl = tonumber(ARGV[a]), ARGV[a + 1] == '1', tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  a = a + 4
  purge(S, now)
  series[i] = S
end
local out = { now, 1 }
local admitted = true
local rules = tonumber(ARGV[a])
a = a + 1
for r = 1, rules do
  local S = series[tonumber(ARGV[a])]
  local limit = tonumber(ARGV[a + 1])
  local outside
  if ARGV[a + 3] == '1' then outside = month_start(now) - 1 else outside = now - tonumber(ARGV[a + 2]) end
  a = a + 4
  local edge, oldest = window(S, outside)
  local retry = nil
  if S.cum - edge + S.held + S.amount > limit then
    admitted = false
    local needed = S.cum + S.held + S.amount - limit
    if S.amount <= limit and needed <= S.cum then retry = first_ts_at(S, needed) end
  end
  table.insert(out, edge)
  table.insert(out, oldest and 1 or 0)
  table.insert(out, oldest or 0)
  table.insert(out, retry and 1 or 0)
  table.insert(out, retry or 0)
end
for _, S in ipairs(series) do
  table.insert(out, S.cum)
  table.insert(out, S.held)
  table.insert(out, S.last)
end
if not admitted then
  out[2] = 0
  return out
end
for _, S in ipairs(series) do
  if S.cum + S.held + S.amount > MAX_TOTAL then return redis.error_reply('PROXYGPT_TOTAL_OVERFLOW') end
end
local real_now = ARGV[1] == '' and now or server_ms()
for _, S in ipairs(series) do
  if S.amount > 0 then
    if S.hold then
      S.created_h = S.held == 0
      redis.call('ZADD', S.h, int(now + hold_ttl), id)
      S.held = S.held + S.amount
      redis.call('HSET', S.s, 'h:' .. id, int(S.amount), 'held', int(S.held))
    else
      append(S, S.amount, now)
      trim(S, now, S.horizon)
    end
    expire(S, S.ttl, real_now)
  end
end
return out
`;

/**
 * commit (1) or release (0) of one hold id: its open holds, or (late) the ones that expired and
 * are still remembered, which no longer count as held: a late commit counts the actual amount
 * (if the expiry was less than MEMORY ago), a late release only forgets them.
 * KEYS: 5 per held series. ARGV: now, hold id, commit (1/0), then per series: actual amount
 * (-1: the held amount), horizon, key ttl. Returns the number of series settled.
 */
export const SETTLE_LUA = `${PRELUDE}
local now = clock(ARGV[1])
local id = ARGV[2]
local commit = ARGV[3] == '1'
local work = {}
for i = 1, #KEYS / PER do
  local S = open(i)
  local a = 4 + 3 * (i - 1)
  S.actual, S.horizon, S.ttl = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  purge(S, now)
  S.amount = tonumber(redis.call('HGET', S.s, 'h:' .. id))
  S.counts = true
  if not S.amount then -- late: expired, remembered (or long forgotten)
    S.late = tonumber(redis.call('HGET', S.s, 'x:' .. id))
    local expired_at = tonumber(redis.call('ZSCORE', S.x, id))
    S.counts = S.late ~= nil and expired_at ~= nil and expired_at > now - MEMORY
  end
  local amount = S.amount or S.late
  if amount then
    if S.actual < 0 then S.actual = amount end
    if commit and S.counts and S.cum + S.held - (S.amount or 0) + S.actual > MAX_TOTAL then return redis.error_reply('PROXYGPT_TOTAL_OVERFLOW') end
    table.insert(work, S)
  end
end
local real_now = ARGV[1] == '' and now or server_ms()
for _, S in ipairs(work) do
  if S.amount then
    redis.call('HDEL', S.s, 'h:' .. id)
    redis.call('ZREM', S.h, id)
    S.held = math.max(0, S.held - S.amount)
    redis.call('HSET', S.s, 'held', int(S.held))
  else
    drop_expired(S, { id })
  end
  if commit and S.counts and S.actual > 0 then
    append(S, S.actual, now)
    trim(S, now, S.horizon)
  end
  expire(S, S.ttl, real_now)
end
return #work
`;

/**
 * prune: expired holds (remembered), remembered ones past their time, and events older than each
 * series' horizon.
 * KEYS: 5 per series. ARGV: now, then per series: horizon. Returns: removed (events and holds
 * that stopped counting), more due (1/0).
 */
export const PRUNE_LUA = `${PRELUDE}
local now = clock(ARGV[1])
local removed, more = 0, 0
for i = 1, #KEYS / PER do
  local S = open(i)
  removed = removed + purge(S, now)
  forget(S, now)
  local n, again = trim(S, now, tonumber(ARGV[i + 1]))
  removed = removed + n
  if again then more = 1 end
end
return { removed, more }
`;
