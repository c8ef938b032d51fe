-- Build the gate from PostgreSQL's truth: every seat of the layout is free except the
-- sold ones. Holds are not kept (they live only in Redis; booking_db's unique index
-- still guards active bookings). The ready marker is written last, in the same script.
-- With mode 'if_missing' a gate that exists is left alone: another caller built it
-- first, and holds may have been taken in it since. A new event uses 'replace'.
-- ARGV: mode, seats_per_row, capacity normal, vip, vvip, then pairs of sold seat id, token
-- Replies: {'built'} | {'loaded'}
if ARGV[1] == 'if_missing' and is_loaded() then
  return {'loaded'}
end
for i = 1, 9 do
  redis.call('DEL', KEYS[i])
end
local per_row = tonumber(ARGV[2])
local sold, by_token = {}, {}
for i = 6, #ARGV, 2 do
  local seat, token = ARGV[i], ARGV[i + 1]
  sold[seat] = true
  redis.call('HSET', SOLD, seat, token)
  by_token[token] = by_token[token] or {}
  table.insert(by_token[token], seat)
end
for token, seats in pairs(by_token) do
  redis.call('HSET', CONFIRMED, token, table.concat(seats, ','))
end
for i, ticket_class in ipairs(CLASSES) do
  fill(ticket_class, 0, tonumber(ARGV[i + 2]) - 1, per_row, sold)
end
redis.call('HSET', LOADED, 'seats_per_row', per_row,
  'normal', ARGV[3], 'vip', ARGV[4], 'vvip', ARGV[5])
return {'built'}
