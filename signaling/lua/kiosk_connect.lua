-- kiosk_connect: a kiosk's socket is authenticated; stop its grace timers, report its call.
-- ARGV[5..] = kiosk_id
local kiosk = ARGV[5]
local call_id = redis.call('GET', k('kcall', kiosk))
if not call_id then return cjson.encode({}) end
del_deadline('kgrace', call_id, '')
del_deadline('cgrace', call_id, 'kiosk')
local ckey = k('call', call_id)
local lang = hget(ckey, 'language')
local rank = redis.call('ZRANK', k('q', lang), call_id)
return cjson.encode({call_id = call_id, state = hget(ckey, 'state'), language = lang,
  position = rank and (rank + 1) or nil, interpreter = hget(ckey, 'interpreter'),
  interp_name = hget(k('interp', hget(ckey, 'interpreter') or ''), 'name')})
