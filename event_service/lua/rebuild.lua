-- Build the gate from PostgreSQL's truth: every seat of the layout is free except the
-- sold ones and those the live holds of pending bookings (booking_db's record) still have.
-- The ready marker is written last, in the same script.
-- With mode 'if_missing' a gate that exists is left alone: another caller built it
-- first, and holds may have been taken in it since. A new event uses 'replace'.
-- ARGV: mode, seats_per_row, capacity normal, vip, vvip, sold count, then sold pairs
--   (seat id, token), then hold triples (token, expiry ms, comma-separated seat ids)
-- Replies: {'built', holds restored} | {'loaded'}
if ARGV[1] == 'if_missing' and is_loaded() then
  return {'loaded'}
end
for i = 1, 9 do
  redis.call('DEL', KEYS[i])
end
if ARGV[1] == 'replace' then
  redis.call('DEL', WAITLISTED)  -- a new event has no waiting list yet
end
-- (seat_version and seat_changes are restarted below, once the layout is written)
local per_row = tonumber(ARGV[2])
local taken, by_token = {}, {}
local first_hold = 7 + 2 * tonumber(ARGV[6])
for i = 7, first_hold - 1, 2 do
  local seat, token = ARGV[i], ARGV[i + 1]
  taken[seat] = true
  redis.call('HSET', SOLD, seat, token)
  by_token[token] = by_token[token] or {}
  table.insert(by_token[token], seat)
end
for token, seats in pairs(by_token) do
  redis.call('HSET', CONFIRMED, token, table.concat(seats, ','))
end
-- A hold keeps the seats nobody bought meanwhile; one that ran out is not restored.
local now, restored = now_ms(), 0
for i = first_hold, #ARGV, 3 do
  local token, expiry = ARGV[i], tonumber(ARGV[i + 1])
  local seats = {}
  for _, seat in ipairs(split(ARGV[i + 2])) do
    if not taken[seat] then
      seats[#seats + 1] = seat
    end
  end
  if expiry > now and #seats > 0 and redis.call('HEXISTS', CONFIRMED, token) == 0 then
    table.sort(seats)
    for _, seat in ipairs(seats) do
      taken[seat] = true
      redis.call('HSET', HOLDS, seat, token)
    end
    redis.call('ZADD', EXPIRIES, expiry, token)
    redis.call('HSET', TOKENS, token,
      'seats:' .. table.concat(seats, ',') .. '|' .. string.format('%d', expiry) .. '|'
        .. table.concat(seats, ','))
    restored = restored + 1
  end
end
for i, ticket_class in ipairs(CLASSES) do
  fill(ticket_class, 0, tonumber(ARGV[i + 2]) - 1, per_row, taken)
end
redis.call('HSET', LOADED, 'seats_per_row', per_row,
  'normal', ARGV[3], 'vip', ARGV[4], 'vvip', ARGV[5])
restart_seat_version()
return {'built', restored}
