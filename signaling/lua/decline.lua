-- decline: the offered interpreter passes; the call goes back to its place.
-- ARGV[5..] = interp_id, call_id, offer_id
local prev = done_before()
if prev then return prev end
local interp_id, call_id, offer_id = ARGV[5], ARGV[6], ARGV[7]
local ckey = k(KEY.call, call_id)
local refused = check_offer(ckey, interp_id, offer_id)
if refused then return finish({err = refused}) end
del_deadline('offer', call_id, offer_id)
local lang = requeue(call_id, interp_id, true)
event('declined', {call = call_id, interp = interp_id, offer = offer_id})
tell_offer_cancelled(interp_id, call_id, offer_id, 'declined')
if hget(k(KEY.interp, interp_id), 'after_call') == IS.away then
  redis.call('HDEL', k(KEY.interp, interp_id), 'after_call')
  set_interp_state(interp_id, IS.away)
  match({lang})
else
  make_idle(interp_id)
  match(concat({lang}, interp_langs(interp_id)))
end
return finish({ok = 'declined'})
