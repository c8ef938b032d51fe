-- Put a token's sold seats (ARGV seats plus those it confirmed) back on sale, and drop
-- any hold it still has: its booking was cancelled. Seats sold to others are untouched.
-- ARGV: token, seat...
-- Replies: {'returned', count} | {'not_loaded'}
if not is_loaded() then
  return {'not_loaded'}
end
local per_row = seats_per_row()
purge_expired(now_ms(), per_row)
local token = ARGV[1]
drop_hold(token, per_row)
local seats = {}
for i = 2, #ARGV do
  seats[#seats + 1] = ARGV[i]
end
local confirmed = redis.call('HGET', CONFIRMED, token)
if confirmed then
  for _, seat in ipairs(split(confirmed)) do
    seats[#seats + 1] = seat
  end
end
local returned = 0
for _, seat in ipairs(seats) do
  if redis.call('HGET', SOLD, seat) == token then
    redis.call('HDEL', SOLD, seat)
    redis.call('ZADD', AVAILABLE[seat_class(seat)], seat_score(seat, per_row), seat)
    seat_changed(seat)
    returned = returned + 1
  end
end
redis.call('HDEL', CONFIRMED, token)
return {'returned', returned}
