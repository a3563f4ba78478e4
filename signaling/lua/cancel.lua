-- cancel: the kiosk gives up while queued or offered (or its grace ran out).
-- ARGV[5..] = kiosk_id, call_id, reason
local prev = done_before()
if prev then return prev end
local kiosk, call_id, reason = ARGV[5], ARGV[6], ARGV[7]
local ckey = k('call', call_id)
if redis.call('EXISTS', ckey) == 0 then return finish({err = 'not_found'}) end
if hget(ckey, 'kiosk') ~= kiosk then return finish({err = 'forbidden'}) end
local state = hget(ckey, 'state')
if state ~= 'queued' and state ~= 'offered' then return finish({err = 'conflict', state = state}) end
local langs = {}
if state == 'offered' then
  local interp_id = hget(ckey, 'interpreter')
  local offer_id = hget(ckey, 'offer_id')
  del_deadline('offer', call_id, offer_id)
  redis.call('HDEL', k('interp', interp_id), 'call_id', 'offer_id')
  notify('i:' .. interp_id, {type = 'call.offer_cancelled', call_id = call_id,
    offer_id = offer_id, reason = 'cancelled'})
  if hget(k('interp', interp_id), 'connected') == '1' then
    make_idle(interp_id)
    langs = interp_langs(interp_id)
  end
end
end_call(call_id, 'abandoned', reason, 'kiosk')
if #langs > 0 then match(langs) end
return finish({ok = 'cancelled'})
