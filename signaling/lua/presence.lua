-- presence: an interpreter asks to be available or away.
-- ARGV[5..] = interp_id, status ('available' | 'away')
local prev = done_before()
if prev then return prev end
local id, status = ARGV[5], ARGV[6]
local key = k(KEY.interp, id)
if redis.call('EXISTS', key) == 0 then return finish({err = 'not_found'}) end
local state = hget(key, 'state') or IS.offline
if status == 'available' then
  redis.call('HDEL', key, 'after_call')
  if state == IS.away or state == IS.wrapup then
    del_deadline('wrapup', id, '')
    if hget(key, 'connected') == '1' then
      make_idle(id)
      match(interp_langs(id))
    end
  end
else
  if state == IS.available then
    unidle(id)
    set_interp_state(id, IS.away)
  elseif state == IS.wrapup then
    del_deadline('wrapup', id, '')
    set_interp_state(id, IS.away)
  elseif state == IS.offered then
    -- Going away while the phone rings passes on the call (it keeps its place).
    local call_id, offer_id = hget(key, 'call_id'), hget(key, 'offer_id')
    del_deadline('offer', call_id, offer_id)
    local lang = requeue(call_id, id, true)
    tell_offer_cancelled(id, call_id, offer_id, 'declined')
    event('declined', {call = call_id, interp = id, offer = offer_id})
    set_interp_state(id, IS.away)
    match({lang})
  elseif state == IS.in_call then
    redis.call('HSET', key, 'after_call', IS.away)
  end
end
return finish({ok = hget(key, 'state'), since_ms = tonumber(hget(key, 'since_ms')),
  until_ms = tonumber(hget(key, 'until_ms'))})
