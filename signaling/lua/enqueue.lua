-- enqueue: a kiosk asks for an interpreter.
-- ARGV[5..] = kiosk_id, ward, counter, language, priority, boost_ms, procedure, call_id,
--             max_wait_ms, no_interpreter_wait_ms
local prev = done_before()
if prev then return prev end
local kiosk, ward, counter, lang = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local priority, boost, procedure, call_id = ARGV[9], tonumber(ARGV[10]), ARGV[11], ARGV[12]
local max_wait, nobody_wait = tonumber(ARGV[13]), tonumber(ARGV[14])
local live = redis.call('GET', k(KEY.kiosk_call, kiosk))
if live then return finish({err = 'conflict', call_id = live}) end
local ckey = k(KEY.call, call_id)
local score = NOW - boost
set_call_state(ckey, call_id, CS.queued, 'id', call_id, 'language', lang, 'kiosk', kiosk,
  'ward', ward, 'counter', counter, 'priority', priority, 'procedure', procedure,
  'enqueued_ms', NOW, 'score', score, 'orig_language', lang, 'max_wait_ms', max_wait)
redis.call('SET', k(KEY.kiosk_call, kiosk), call_id)
redis.call('DEL', k(KEY.kiosk_missed_end, kiosk))  -- a kiosk asking again is past its last call
redis.call('SADD', k(KEY.live_calls), call_id)
event('enqueued', {call = call_id, lang = lang, kiosk = kiosk, ward = ward, counter = counter,
  prio = priority, proc = procedure})  -- the procedure chosen on the kiosk: a code, never words
if redis.call('SCARD', k(KEY.logged_in, lang)) == 0 then
  if nobody_wait <= 0 then
    end_call(call_id, 'failed', 'no_interpreter', nil)
    return finish({ok = CS.failed, call_id = call_id, reason = 'no_interpreter', position = 1,
      staffed = 0, available = 0})
  end
  add_deadline('nointerp', call_id, '', NOW + nobody_wait)
end
redis.call('ZADD', k(KEY.queue, lang), score, call_id)
add_deadline('maxwait', call_id, '', NOW + max_wait)
match({lang})
local rank = redis.call('ZRANK', k(KEY.queue, lang), call_id)
return finish({ok = CS.queued, call_id = call_id, state = hget(ckey, 'state'),
  position = rank and (rank + 1) or 1, staffed = redis.call('SCARD', k(KEY.logged_in, lang)),
  available = redis.call('ZCARD', k(KEY.idle, lang)) + (hget(ckey, 'state') == CS.offered and 1 or 0),
  serving_milli = serving_milli(lang)})
