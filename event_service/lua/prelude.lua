-- Shared by every seat-gate script; the operation's body is appended after it.
--
-- All keys of one event share the hash tag {<event id>}, so a script touches one slot.
-- KEYS[1] loaded     hash  the gate's ready marker and its layout (seats_per_row, capacities)
-- KEYS[2] holds      hash  seat id -> holding token
-- KEYS[3] expiries   zset  token -> expiry (ms since epoch, Redis server clock)
-- KEYS[4] tokens     hash  token -> "<fingerprint>|<expiry ms>|<seat,seat,...>"
-- KEYS[5] confirmed  hash  token -> "<seat,seat,...>" made sold by that token
-- KEYS[6] sold       hash  seat id -> token that bought it
-- KEYS[7..9] available zsets (normal, vip, vvip): free seat ids scored by index in class
-- KEYS[10]   cache_version  string  bumped by every edit of the event (event_service/cache.py)
-- KEYS[11]   seat_version   string  bumped by every script that changes a seat's status
--            (hold, release, expiry, confirm, sale, unsale); a rebuild or resize restarts
--            it from the server clock in microseconds, so a version never comes back
-- KEYS[12]   seat_changes   zset    seat id -> the seat_version of its last change (the
--            most recent ones only); the seat map brings its rendition up to date from it
-- KEYS[13]   waitlisted     hash    ticket class -> '1' while the class has a waiting list:
--            its free seats are kept for the list's offers (event_service/waitlist.py),
--            a rebuild leaves it as it is
--
-- Counters are never stored: available = ZCARD, held and sold follow from the hashes.
local LOADED, HOLDS, EXPIRIES, TOKENS, CONFIRMED, SOLD = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local CLASSES = {'normal', 'vip', 'vvip'}
local AVAILABLE = {normal = KEYS[7], vip = KEYS[8], vvip = KEYS[9]}
local SEAT_VERSION, SEAT_CHANGES, WAITLISTED = KEYS[11], KEYS[12], KEYS[13]
local BATCH = 500
-- seat_changes keeps at least this many seats (trimmed back to it at twice as many)
local CHANGES_KEPT = 10000

local function is_loaded()
  return redis.call('EXISTS', LOADED) == 1
end

-- The event's edit version ('' before its first edit): prices are read at this version.
local function event_version()
  return redis.call('GET', KEYS[10]) or ''
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function split(csv)
  local items = {}
  for item in string.gmatch(csv, '[^,]+') do
    items[#items + 1] = item
  end
  return items
end

local function seat_class(seat)
  return string.match(seat, '^(%l+)%-')
end

local function seat_score(seat, per_row)
  local _, row, number = string.match(seat, '^(%l+)%-(%d+)%-(%d+)$')
  return (tonumber(row) - 1) * per_row + tonumber(number) - 1
end

local function seats_per_row()
  return tonumber(redis.call('HGET', LOADED, 'seats_per_row'))
end

-- Start the seat version anew (a new layout, or a gate that has none yet): the seat map
-- renders in full once, as no change since an older version is on record.
-- The version is a decimal string (microseconds), never a Lua number (a double).
local function restart_seat_version()
  local t = redis.call('TIME')
  local version = t[1] .. string.format('%06d', tonumber(t[2]))
  redis.call('SET', SEAT_VERSION, version)
  redis.call('DEL', SEAT_CHANGES)
  redis.call('HSET', LOADED, 'changes_since', version)
  return version
end

local function seat_version()
  return redis.call('GET', SEAT_VERSION) or restart_seat_version()
end

-- Keep the change log short: what is cut is older than 'changes_since', from which on the
-- log is complete.
local function trim_changes()
  local kept = redis.call('ZCARD', SEAT_CHANGES)
  if kept > 2 * CHANGES_KEPT then
    local last_cut = kept - CHANGES_KEPT - 1
    local cut = redis.call('ZRANGE', SEAT_CHANGES, last_cut, last_cut, 'WITHSCORES')
    redis.call('ZREMRANGEBYRANK', SEAT_CHANGES, 0, last_cut)
    redis.call('HSET', LOADED, 'changes_since', cut[2])
  end
end

-- Record that a seat's status changed: the script's first change bumps the seat version.
local changed_in = nil
local function seat_changed(seat)
  if not changed_in then
    local version = redis.call('INCR', SEAT_VERSION)
    if version == 1 then  -- the gate had no seat version yet (built before there were any)
      restart_seat_version()
      version = redis.call('INCR', SEAT_VERSION)
    end
    changed_in = string.format('%d', version)
    trim_changes()
  end
  redis.call('ZADD', SEAT_CHANGES, changed_in, seat)
end

local function parse_hold(entry)
  local fingerprint, expiry, csv = string.match(entry, '^(.-)|(%d+)|(.*)$')
  return fingerprint, tonumber(expiry), split(csv)
end

-- Put a held seat back on sale, but only if this token still holds it.
local function give_back(seat, token, per_row)
  if redis.call('HGET', HOLDS, seat) == token then
    redis.call('HDEL', HOLDS, seat)
    redis.call('ZADD', AVAILABLE[seat_class(seat)], seat_score(seat, per_row), seat)
    seat_changed(seat)
  end
end

-- Drop the token's hold, returning its seats; the hold's entry (or false) is returned.
local function drop_hold(token, per_row)
  local entry = redis.call('HGET', TOKENS, token)
  if entry then
    local _, _, seats = parse_hold(entry)
    for _, seat in ipairs(seats) do
      give_back(seat, token, per_row)
    end
    redis.call('HDEL', TOKENS, token)
  end
  redis.call('ZREM', EXPIRIES, token)
  return entry
end

-- Every script starts here: holds past their expiry give their seats back, so counts
-- are right even when no service ever calls release.
local function purge_expired(now, per_row)
  local expired = redis.call('ZRANGEBYSCORE', EXPIRIES, '-inf', now)
  for _, token in ipairs(expired) do
    drop_hold(token, per_row)
  end
end

-- Add seats [first, last] (0-based indexes) of a class to its available set.
local function fill(ticket_class, first, last, per_row, skip)
  local args = {}
  for index = first, last do
    local row = math.floor(index / per_row)
    local seat = ticket_class .. '-' .. (row + 1) .. '-' .. (index - row * per_row + 1)
    if not (skip and skip[seat]) then
      args[#args + 1] = index
      args[#args + 1] = seat
      if #args >= 2 * BATCH then
        redis.call('ZADD', AVAILABLE[ticket_class], unpack(args))
        args = {}
      end
    end
  end
  if #args > 0 then
    redis.call('ZADD', AVAILABLE[ticket_class], unpack(args))
  end
end

local function reply_seats(head, seats)
  local reply = head
  for _, seat in ipairs(seats) do
    reply[#reply + 1] = seat
  end
  return reply
end
