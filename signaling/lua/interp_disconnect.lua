-- interp_disconnect: an interpreter's socket is gone. Nothing more is offered; a ringing
-- offer is withdrawn (the call keeps its place); grace timers start.
-- ARGV[5..] = interp_id, grace_ms, call_grace_ms, node ('' = do not check the registration)
local id, grace, call_grace, node = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8]
local key = k(KEY.interp, id)
if not release_client('i:' .. id, node) then return encode({ok = 'stale'}) end
if redis.call('EXISTS', key) == 0 then return encode({ok = 'unknown'}) end
redis.call('HSET', key, 'connected', '0')
unidle(id)
local state = hget(key, 'state')
if state == IS.offered then
  local call_id, offer_id = hget(key, 'call_id'), hget(key, 'offer_id')
  del_deadline('offer', call_id, offer_id)
  local lang = requeue(call_id, id, false)
  event('withdrawn', {call = call_id, interp = id, offer = offer_id})
  -- They keep their status (available) for a resume; offered nothing while gone.
  set_interp_state(id, IS.available)
  match({lang})
elseif state == IS.in_call then
  add_deadline('cgrace', hget(key, 'call_id'), 'interpreter', NOW + call_grace)
end
add_deadline('igrace', id, '', NOW + grace)
return encode({ok = hget(key, 'state')})
