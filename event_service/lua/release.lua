-- Give back what a token holds (nothing if it holds nothing: release is idempotent).
-- ARGV: token
-- Reply: {seats released, 1 if the token has confirmed seats else 0}
if not is_loaded() then
  return {0, 0}
end
local per_row = seats_per_row()
purge_expired(now_ms(), per_row)
local token = ARGV[1]
local released = 0
local entry = drop_hold(token, per_row)
if entry then
  local _, _, seats = parse_hold(entry)
  released = #seats
end
return {released, redis.call('HEXISTS', CONFIRMED, token)}
