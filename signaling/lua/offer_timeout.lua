-- offer_timeout: nobody answered the ring in time; call back to its place, interpreter away.
-- ARGV[5..] = call_id, offer_id
local call_id, offer_id = ARGV[5], ARGV[6]
if not deadline_due('offer', call_id, offer_id) then return finish({ok = 'stale'}) end
del_deadline('offer', call_id, offer_id)
local ckey = k(KEY.call, call_id)
if hget(ckey, 'state') ~= CS.offered or hget(ckey, 'offer_id') ~= offer_id then
  return finish({ok = 'stale'})
end
local interp_id = hget(ckey, 'interpreter')
local lang = requeue(call_id, interp_id, true)
event('offer_timeout', {call = call_id, interp = interp_id, offer = offer_id})
tell_offer_cancelled(interp_id, call_id, offer_id, 'timeout')
set_interp_state(interp_id, IS.away)
match({lang})
return finish({ok = 'timeout', interp = interp_id})
