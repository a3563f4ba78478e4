-- hangup: either party ends a connected call (a kiosk's hangup while waiting is a cancel).
-- ARGV[5..] = role ('kiosk' | 'interpreter' | 'system'), party id, call_id, reason
local prev = done_before()
if prev then return prev end
local role, who, call_id, reason = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local ckey = k(KEY.call, call_id)
if redis.call('EXISTS', ckey) == 0 then return finish({err = 'not_found'}) end
local kiosk, interp_id = hget(ckey, 'kiosk'), hget(ckey, 'interpreter')
if (role == 'kiosk' and kiosk ~= who) or (role == 'interpreter' and interp_id ~= who) then
  return finish({err = 'forbidden'})
end
local state = hget(ckey, 'state')
if role == 'kiosk' and (state == CS.queued or state == CS.offered) then
  -- A kiosk hanging up a call still waiting gives it up: a cancel (PROTOCOL.md section 4).
  abandon_waiting(call_id, 'cancelled', 'kiosk')
  return finish({ok = 'cancelled'})
end
if state ~= CS.connecting and state ~= CS.connected then
  return finish({err = 'conflict', state = state})
end
local _, msg = end_call(call_id, 'answered', reason, role ~= 'system' and role or nil)
notify('i:' .. interp_id, msg)
start_wrapup(interp_id)
return finish({ok = CS.ended, relay = hget(ckey, 'relay'), duration_s = msg.duration_s})
