-- enqueue: a kiosk asks for an interpreter.
-- ARGV[5..] = kiosk_id, ward, counter, language, priority, boost_ms, procedure, call_id,
--             max_wait_ms, no_interpreter_wait_ms
local prev = done_before()
if prev then return prev end
local kiosk, ward, counter, lang = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local priority, boost, procedure, call_id = ARGV[9], tonumber(ARGV[10]), ARGV[11], ARGV[12]
local max_wait, nobody_wait = tonumber(ARGV[13]), tonumber(ARGV[14])
local live = redis.call('GET', k('kcall', kiosk))
if live then return finish({err = 'conflict', call_id = live}) end
local ckey = k('call', call_id)
local score = NOW - boost
redis.call('HSET', ckey, 'id', call_id, 'state', 'queued', 'language', lang, 'kiosk', kiosk,
  'ward', ward, 'counter', counter, 'priority', priority, 'procedure', procedure,
  'enqueued_ms', NOW, 'score', score, 'orig_language', lang, 'max_wait_ms', max_wait)
redis.call('SET', k('kcall', kiosk), call_id)
redis.call('DEL', k('kended', kiosk))  -- a kiosk asking again is past its last call
redis.call('SADD', k('calls', 'live'), call_id)
event('enqueued', {call = call_id, lang = lang, kiosk = kiosk, ward = ward, counter = counter,
  prio = priority})
if redis.call('SCARD', k('in', lang)) == 0 then
  if nobody_wait <= 0 then
    end_call(call_id, 'failed', 'no_interpreter', nil)
    return finish({ok = 'failed', call_id = call_id, reason = 'no_interpreter', position = 1,
      staffed = 0, available = 0})
  end
  add_deadline('nointerp', call_id, '', NOW + nobody_wait)
end
redis.call('ZADD', k('q', lang), score, call_id)
add_deadline('maxwait', call_id, '', NOW + max_wait)
match({lang})
local rank = redis.call('ZRANK', k('q', lang), call_id)
return finish({ok = 'queued', call_id = call_id, state = hget(ckey, 'state'),
  position = rank and (rank + 1) or 1, staffed = redis.call('SCARD', k('in', lang)),
  available = redis.call('ZCARD', k('idle', lang)) + (hget(ckey, 'state') == 'offered' and 1 or 0)})
