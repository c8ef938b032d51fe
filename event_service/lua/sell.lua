-- Mark seats sold to a token because PostgreSQL says so (a booking_confirmed message),
-- whatever the gate thought of them: PostgreSQL is the truth. Idempotent.
-- ARGV: token, seat...
-- Replies: {'sold'} | {'conflict', seat...} (sold to another token) | {'not_loaded'}
if not is_loaded() then
  return {'not_loaded'}
end
local per_row = seats_per_row()
purge_expired(now_ms(), per_row)
local token = ARGV[1]
local conflicts = {}
for i = 2, #ARGV do
  local owner = redis.call('HGET', SOLD, ARGV[i])
  if owner and owner ~= token then
    conflicts[#conflicts + 1] = ARGV[i]
  end
end
if #conflicts > 0 then
  return reply_seats({'conflict'}, conflicts)
end
drop_hold(token, per_row)
local seats, listed = {}, {}
local before = redis.call('HGET', CONFIRMED, token)
if before then
  for _, seat in ipairs(split(before)) do
    if redis.call('HGET', SOLD, seat) == token then
      seats[#seats + 1] = seat
      listed[seat] = true
    end
  end
end
for i = 2, #ARGV do
  local seat = ARGV[i]
  redis.call('HDEL', HOLDS, seat)
  redis.call('ZREM', AVAILABLE[seat_class(seat)], seat)
  redis.call('HSET', SOLD, seat, token)
  seat_changed(seat)
  if not listed[seat] then
    seats[#seats + 1] = seat
    listed[seat] = true
  end
end
redis.call('HSET', CONFIRMED, token, table.concat(seats, ','))
return {'sold'}
