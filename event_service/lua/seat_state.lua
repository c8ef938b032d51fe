-- The seats that are not free: {held seat ids, sold seat ids} after expired holds are
-- purged; every other seat of the layout is available. {'not_loaded'} when the gate is not built.
if not is_loaded() then
  return {'not_loaded'}
end
purge_expired(now_ms(), seats_per_row())
return {redis.call('HKEYS', HOLDS), redis.call('HKEYS', SOLD)}
