-- Free seats per class after expired holds are purged.
-- Reply: {normal, vip, vvip} | {'not_loaded'} when the gate is not built
if not is_loaded() then
  return {'not_loaded'}
end
purge_expired(now_ms(), seats_per_row())
return {
  redis.call('ZCARD', AVAILABLE.normal),
  redis.call('ZCARD', AVAILABLE.vip),
  redis.call('ZCARD', AVAILABLE.vvip),
}
