-- Make a token's held seats sold (permanent: no expiry), or with ARGV[2] == 'peek' only
-- report the token's state.
-- ARGV: token, mode ('confirm' | 'peek')
-- Replies: {'confirmed', seat...} | {'held', expiry_ms, seat...} (peek) | {'gone'}
--   | {'not_loaded'}
if not is_loaded() then
  return {'not_loaded'}
end
local per_row = seats_per_row()
purge_expired(now_ms(), per_row)
local token = ARGV[1]
local confirmed = redis.call('HGET', CONFIRMED, token)
if confirmed then
  return reply_seats({'confirmed'}, split(confirmed))
end
local entry = redis.call('HGET', TOKENS, token)
if not entry then
  return {'gone'}
end
local _, expiry, seats = parse_hold(entry)
for _, seat in ipairs(seats) do
  if redis.call('HGET', HOLDS, seat) ~= token then
    return {'gone'}
  end
end
if ARGV[2] == 'peek' then
  return reply_seats({'held', expiry}, seats)
end
for _, seat in ipairs(seats) do
  redis.call('HDEL', HOLDS, seat)
  redis.call('HSET', SOLD, seat, token)
  seat_changed(seat)
end
redis.call('HDEL', TOKENS, token)
redis.call('ZREM', EXPIRIES, token)
redis.call('HSET', CONFIRMED, token, table.concat(seats, ','))
return reply_seats({'confirmed'}, seats)
