-- interp_connect: an interpreter's socket is authenticated (new session or resumed one).
-- ARGV[5..] = interp_id, languages (comma list), name, resumed ('1' | '0')
local id, langs, name, resumed = ARGV[5], ARGV[6], ARGV[7], ARGV[8] == '1'
local key = k(KEY.interp, id)
local old_langs = split(hget(key, 'languages'))
for _, lang in ipairs(old_langs) do
  redis.call('SREM', k(KEY.logged_in, lang), id)
  redis.call('ZREM', k(KEY.idle, lang), id)
end
if redis.call('EXISTS', key) == 0 then redis.call('HSET', key, 'idle_since_ms', NOW) end
redis.call('HSET', key, 'languages', langs, 'name', name, 'connected', '1')
redis.call('SADD', k(KEY.interpreters), id)
for _, lang in ipairs(split(langs)) do redis.call('SADD', k(KEY.logged_in, lang), id) end
del_deadline('igrace', id, '')
local state = hget(key, 'state') or IS.offline
if hget(key, 'call_id') then del_deadline('cgrace', hget(key, 'call_id'), 'interpreter') end
if state == IS.offline then
  set_interp_state(id, IS.away)
elseif state == IS.available then
  if resumed then make_idle(id); match(split(langs)) else unidle(id); set_interp_state(id, IS.away) end
elseif state == IS.offered and not resumed then
  -- A second tab or a fresh sign-in: the ringing offer stays, but after it they are away.
  redis.call('HSET', key, 'after_call', IS.away)
elseif state == IS.wrapup and not resumed then
  -- A new session starts away (PROTOCOL.md section 5), also right after a call.
  del_deadline('wrapup', id, '')
  set_interp_state(id, IS.away)
elseif state == IS.in_call and not resumed then
  redis.call('HSET', key, 'after_call', IS.away)
end
-- A waiting call whose language had nobody may be waiting on a fail-fast deadline: fine, the
-- sweeper re-checks who is logged in when it fires.
-- Read after matching: a resumed interpreter may have been offered a call just now.
-- What the interpreter must see again: its ringing offer, or its call.
local state_now, call_id = hget(key, 'state'), hget(key, 'call_id')
local resend = nil
if call_id and state_now == IS.offered and hget(key, 'offer_id') then
  resend = offer_message(call_id, hget(key, 'offer_id'))
elseif call_id and state_now == IS.in_call then
  resend = connected_message(call_id, 'interpreter')
end
return encode({state = state_now, since_ms = tonumber(hget(key, 'since_ms')),
  until_ms = tonumber(hget(key, 'until_ms')),
  call_id = call_id, offer_id = hget(key, 'offer_id'), resend = resend})
