-- cancel: the kiosk gives up while queued or offered (or its grace ran out).
-- ARGV[5..] = kiosk_id, call_id, reason
local prev = done_before()
if prev then return prev end
local kiosk, call_id, reason = ARGV[5], ARGV[6], ARGV[7]
local ckey = k(KEY.call, call_id)
if redis.call('EXISTS', ckey) == 0 then return finish({err = 'not_found'}) end
if hget(ckey, 'kiosk') ~= kiosk then return finish({err = 'forbidden'}) end
local state = hget(ckey, 'state')
if state ~= CS.queued and state ~= CS.offered then return finish({err = 'conflict', state = state}) end
abandon_waiting(call_id, reason, 'kiosk')
return finish({ok = 'cancelled'})
