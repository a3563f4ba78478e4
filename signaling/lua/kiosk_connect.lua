-- kiosk_connect: a kiosk's socket is authenticated; stop its grace timers, report its call
-- (and the end of one it missed while away).
-- ARGV[5..] = kiosk_id
local kiosk = ARGV[5]
local call_id = redis.call('GET', k(KEY.kiosk_call, kiosk))
-- the end of a call the kiosk missed while it was away, told once
local ended = redis.call('GET', k(KEY.kiosk_missed_end, kiosk))
if ended then
  redis.call('DEL', k(KEY.kiosk_missed_end, kiosk))
  ended = cjson.decode(ended)
else
  ended = nil
end
if not call_id then return encode({ended = ended}) end
del_deadline('kgrace', call_id, '')
del_deadline('cgrace', call_id, 'kiosk')
local ckey = k(KEY.call, call_id)
local lang = hget(ckey, 'language')
local rank = redis.call('ZRANK', k(KEY.queue, lang), call_id)
local state = hget(ckey, 'state')
local resend = nil
if state == CS.connecting or state == CS.connected then resend = connected_message(call_id, 'kiosk') end
return encode({ended = ended, resend = resend, call_id = call_id, state = state,
  language = lang, position = rank and (rank + 1) or nil})
