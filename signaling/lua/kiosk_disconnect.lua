-- kiosk_disconnect: a kiosk's socket is gone; its call waits for it for a grace period.
-- ARGV[5..] = kiosk_id, grace_ms, call_grace_ms, node ('' = do not check the registration)
local kiosk, grace, call_grace, node = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8]
if not release_client('k:' .. kiosk, node) then return encode({ok = 'stale'}) end
local call_id = redis.call('GET', k(KEY.kiosk_call, kiosk))
if not call_id then return encode({ok = 'idle'}) end
local state = hget(k(KEY.call, call_id), 'state')
if state == CS.queued or state == CS.offered then
  add_deadline('kgrace', call_id, '', NOW + grace)
elseif state == CS.connecting or state == CS.connected then
  add_deadline('cgrace', call_id, 'kiosk', NOW + call_grace)
end
return encode({ok = state})
