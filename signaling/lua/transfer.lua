-- transfer: the interpreter sends the resident back to the queue for another language,
-- keeping the original place (score). Refused when nobody for that language is logged in.
-- ARGV[5..] = interp_id, call_id, language
local prev = done_before()
if prev then return prev end
local interp_id, call_id, lang = ARGV[5], ARGV[6], ARGV[7]
local ckey = k(KEY.call, call_id)
if redis.call('EXISTS', ckey) == 0 then return finish({err = 'not_found'}) end
if hget(ckey, 'interpreter') ~= interp_id then return finish({err = 'forbidden'}) end
local state = hget(ckey, 'state')
if state ~= CS.connecting and state ~= CS.connected then return finish({err = 'conflict'}) end
local others = redis.call('SCARD', k(KEY.logged_in, lang)) - redis.call('SISMEMBER', k(KEY.logged_in, lang), interp_id)
if others == 0 then
  return finish({err = 'conflict', reason = 'no_interpreter'})
end
local from = hget(ckey, 'language')
set_call_state(ckey, call_id, CS.queued, 'language', lang, 'interpreter', '')
redis.call('HDEL', ckey, 'answered_ms', 'relay', 'media_kiosk', 'media_interpreter')
redis.call('SADD', k(KEY.passed, call_id), interp_id)
redis.call('ZADD', k(KEY.queue, lang), tonumber(hget(ckey, 'score')), call_id)
add_deadline('maxwait', call_id, '', NOW + tonumber(hget(ckey, 'max_wait_ms') or 1800000))
if has_deadline('cgrace', call_id, 'kiosk') then
  -- The kiosk is away: its grace is now that of a waiting call.
  del_deadline('cgrace', call_id, 'kiosk')
  add_deadline('kgrace', call_id, '', NOW + cfg_ms('kiosk_grace_ms', 20000))
end
del_deadline('cgrace', call_id, 'interpreter')
event('transferred', {call = call_id, interp = interp_id, from = from, to = lang})
local msg = {type = 'call.ended', call_id = call_id, reason = 'transferred', by = 'interpreter'}
notify('i:' .. interp_id, msg)
notify('k:' .. hget(ckey, 'kiosk'), {type = 'call.queued', call_id = call_id, language = lang,
  position = redis.call('ZRANK', k(KEY.queue, lang), call_id) + 1, transferred = true})
start_wrapup(interp_id)
local relay = hget(ckey, 'relay')
match({lang})
return finish({ok = 'transferred', relay = relay})
