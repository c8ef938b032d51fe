-- Take an all-or-nothing hold for a token.
-- ARGV: token, ttl_ms[,not_after_ms], fingerprint, mode ('seats' | 'count' | 'offer'), then
--   seats: seat ids...        count, offer: ticket_class, count
-- not_after_ms: when the caller stops waiting (Unix ms); later, nothing is held ('too_late'),
--   by this server's clock, so a caller that got no answer may release the token after it.
-- A class with a waiting list (WAITLISTED) keeps its free seats for the list: only an
-- 'offer' (a count, for the list's next entry) may hold them.
-- KEYS[10]: the event's cache version, read with the hold so the caller prices the seats
--   from the very version of the event the hold was granted on.
-- Replies: {'held', expiry_ms, version, seat...} | {'taken', seat...} | {'unknown', seat...}
--   | {'short', available} | {'reserved', ticket_class} | {'token_in_use'} | {'token_used'}
--   | {'not_loaded'} | {'too_late'}
local ttl_ms, not_after = string.match(ARGV[2], '^(%d+),?(%d*)$')
local now = now_ms()
if not_after ~= '' and now > tonumber(not_after) then
  return {'too_late'}
end
if not is_loaded() then
  return {'not_loaded'}
end
local per_row = seats_per_row()
purge_expired(now, per_row)

local token, fingerprint = ARGV[1], ARGV[3]
local existing = redis.call('HGET', TOKENS, token)
if existing then
  local held_fingerprint, expiry, held = parse_hold(existing)
  if held_fingerprint == fingerprint then
    return reply_seats({'held', expiry, event_version()}, held)
  end
  return {'token_in_use'}
end
if redis.call('HEXISTS', CONFIRMED, token) == 1 then
  return {'token_used'}
end

local seats = {}
if ARGV[4] == 'seats' then
  local unknown, taken = {}, {}
  for i = 5, #ARGV do
    local seat = ARGV[i]
    local available = AVAILABLE[seat_class(seat)]
    if available and redis.call('HEXISTS', WAITLISTED, seat_class(seat)) == 1 then
      return {'reserved', seat_class(seat)}
    end
    if available and redis.call('ZSCORE', available, seat) then
      seats[#seats + 1] = seat
    elseif redis.call('HEXISTS', HOLDS, seat) == 1 or redis.call('HEXISTS', SOLD, seat) == 1 then
      taken[#taken + 1] = seat
    else
      unknown[#unknown + 1] = seat
    end
  end
  if #unknown > 0 then
    return reply_seats({'unknown'}, unknown)
  end
  if #taken > 0 then
    return reply_seats({'taken'}, taken)
  end
else
  if ARGV[4] == 'count' and redis.call('HEXISTS', WAITLISTED, ARGV[5]) == 1 then
    return {'reserved', ARGV[5]}
  end
  local available = AVAILABLE[ARGV[5]]
  local count = tonumber(ARGV[6])
  seats = redis.call('ZRANGE', available, 0, count - 1)
  if #seats < count then
    return {'short', redis.call('ZCARD', available)}
  end
end

for _, seat in ipairs(seats) do
  redis.call('ZREM', AVAILABLE[seat_class(seat)], seat)
  redis.call('HSET', HOLDS, seat, token)
  seat_changed(seat)
end
local expiry = now + tonumber(ttl_ms)
redis.call('ZADD', EXPIRIES, expiry, token)
redis.call('HSET', TOKENS, token,
  fingerprint .. '|' .. string.format('%d', expiry) .. '|' .. table.concat(seats, ','))
return reply_seats({'held', expiry, event_version()}, seats)
