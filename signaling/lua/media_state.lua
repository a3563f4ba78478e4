-- media_state: the relay reports a party's media leg connected; the call is 'connected'
-- once both legs are. ARGV[4..] = call_id, party
local call_id, party = ARGV[5], ARGV[6]
local ckey = k(KEY.call, call_id)
local state = hget(ckey, 'state')
if state ~= CS.connecting and state ~= CS.connected then return finish({ok = 'stale'}) end
redis.call('HSET', ckey, 'media_' .. party, NOW)
if state == CS.connecting and hget(ckey, 'media_kiosk') and hget(ckey, 'media_interpreter') then
  set_call_state(ckey, call_id, CS.connected)
  event('media', {call = call_id, state = CS.connected})
end
return finish({ok = hget(ckey, 'state')})
