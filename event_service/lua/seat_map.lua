-- What the seat map needs to bring a rendition made at seat version ARGV[1] ('' for none)
-- up to date, after expired holds are purged (so the map shows them free at once).
-- ARGV: the rendition's seat version, or ''
-- Replies: {'same', version}
--   | {'changes', version, held count, sold count, seat, status, seat, status, ...}
--       every seat whose status changed since, with its status now
--   | {'full', version, seats_per_row, normal, vip, vvip, {held seat...}, {sold seat...}}
--       when no rendition is given, or the change log no longer reaches back to it
--   | {'not_loaded'}
if not is_loaded() then
  return {'not_loaded'}
end
purge_expired(now_ms(), seats_per_row())
local version = seat_version()
local since = ARGV[1]
if since == version then
  return {'same', version}
end
local complete_from = redis.call('HGET', LOADED, 'changes_since')
if since ~= '' and complete_from and tonumber(complete_from) <= tonumber(since)
    and tonumber(since) < tonumber(version) then
  local reply = {'changes', version, redis.call('HLEN', HOLDS), redis.call('HLEN', SOLD)}
  for _, seat in ipairs(redis.call('ZRANGEBYSCORE', SEAT_CHANGES, '(' .. since, '+inf')) do
    local status = 'available'
    if redis.call('HEXISTS', SOLD, seat) == 1 then
      status = 'sold'
    elseif redis.call('HEXISTS', HOLDS, seat) == 1 then
      status = 'held'
    end
    reply[#reply + 1] = seat
    reply[#reply + 1] = status
  end
  return reply
end
local layout = redis.call('HMGET', LOADED, 'seats_per_row', 'normal', 'vip', 'vvip')
return {'full', version, layout[1], layout[2], layout[3], layout[4],
  redis.call('HKEYS', HOLDS), redis.call('HKEYS', SOLD)}
