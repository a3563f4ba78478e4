-- accept: an interpreter takes the call it was offered (fenced by offer_id).
-- ARGV[5..] = interp_id, call_id, offer_id
local prev = done_before()
if prev then return prev end
local interp_id, call_id, offer_id = ARGV[5], ARGV[6], ARGV[7]
local ckey = k(KEY.call, call_id)
local refused = check_offer(ckey, interp_id, offer_id)
if refused then return finish({err = refused}) end
del_deadline('offer', call_id, offer_id)
local enq = tonumber(hget(ckey, 'enqueued_ms'))
local first = hget(ckey, 'answered_ms') == nil
set_call_state(ckey, call_id, CS.connecting, 'answered_ms', NOW, 'offer_id', '')
if first then redis.call('HSET', ckey, 'first_answered_ms', NOW) end
del_deadline('maxwait', call_id, '')
del_deadline('nointerp', call_id, '')
if has_deadline('kgrace', call_id, '') then
  -- The kiosk dropped while waiting: now it has a connected call's grace to come back.
  del_deadline('kgrace', call_id, '')
  add_deadline('cgrace', call_id, 'kiosk', NOW + cfg_ms('call_grace_ms', 30000))
end
redis.call('HDEL', k(KEY.interp, interp_id), 'offer_id')
set_interp_state(interp_id, IS.in_call)
event('answered', {call = call_id, interp = interp_id, wait_ms = NOW - enq,
  lang = hget(ckey, 'language')})
notify('k:' .. hget(ckey, 'kiosk'), connected_message(call_id, 'kiosk'))
notify('i:' .. interp_id, connected_message(call_id, 'interpreter'))
return finish({ok = CS.connected, call_id = call_id})
