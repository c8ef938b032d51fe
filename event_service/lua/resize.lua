-- Change the layout: class capacities, and seats_per_row (which renames every seat, so
-- only while nothing is held or sold). Seats are cut from the end of a class, and only
-- if none of them is held or sold.
-- ARGV: seats_per_row, capacity normal, vip, vvip
-- Replies: {'ok'} | {'taken', class, seats held or sold in class, of those beyond the cut}
--   | {'layout_in_use'} | {'not_loaded'}
if not is_loaded() then
  return {'not_loaded'}
end
local old_per_row = seats_per_row()
purge_expired(now_ms(), old_per_row)
local per_row = tonumber(ARGV[1])
local capacity, old_capacity = {}, {}
for i, ticket_class in ipairs(CLASSES) do
  capacity[ticket_class] = tonumber(ARGV[i + 1])
  old_capacity[ticket_class] = tonumber(redis.call('HGET', LOADED, ticket_class))
end

if per_row ~= old_per_row then
  if redis.call('HLEN', HOLDS) > 0 or redis.call('HLEN', SOLD) > 0 then
    return {'layout_in_use'}
  end
  for _, ticket_class in ipairs(CLASSES) do
    redis.call('DEL', AVAILABLE[ticket_class])
    fill(ticket_class, 0, capacity[ticket_class] - 1, per_row, nil)
  end
else
  for _, ticket_class in ipairs(CLASSES) do
    local new, old = capacity[ticket_class], old_capacity[ticket_class]
    if new < old then
      local free_beyond = redis.call('ZCOUNT', AVAILABLE[ticket_class], new, '+inf')
      if free_beyond < old - new then
        local taken = old - redis.call('ZCARD', AVAILABLE[ticket_class])
        return {'taken', ticket_class, taken, old - new - free_beyond}
      end
    end
  end
  for _, ticket_class in ipairs(CLASSES) do
    local new, old = capacity[ticket_class], old_capacity[ticket_class]
    if new < old then
      redis.call('ZREMRANGEBYSCORE', AVAILABLE[ticket_class], new, '+inf')
    elseif new > old then
      fill(ticket_class, old, new - 1, per_row, nil)
    end
  end
end
redis.call('HSET', LOADED, 'seats_per_row', per_row,
  'normal', capacity.normal, 'vip', capacity.vip, 'vvip', capacity.vvip)
restart_seat_version()
return {'ok'}
