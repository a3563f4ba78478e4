-- media_state: the relay reports a party's media leg connected; the call is 'connected'
-- once both legs are. ARGV[4..] = call_id, party
local call_id, party = ARGV[5], ARGV[6]
local ckey = k('call', call_id)
local state = hget(ckey, 'state')
if state ~= 'connecting' and state ~= 'connected' then return finish({ok = 'stale'}) end
redis.call('HSET', ckey, 'media_' .. party, NOW)
if state == 'connecting' and hget(ckey, 'media_kiosk') and hget(ckey, 'media_interpreter') then
  redis.call('HSET', ckey, 'state', 'connected')
  event('media', {call = call_id, state = 'connected'})
end
return finish({ok = hget(ckey, 'state')})
