-- wrapup_end: the wrap-up time is over; the interpreter is available again (or away).
-- ARGV[5..] = interp_id
local id = ARGV[5]
if not deadline_due('wrapup', id, '') then return finish({ok = 'stale'}) end
del_deadline('wrapup', id, '')
local key = k(KEY.interp, id)
if hget(key, 'state') ~= IS.wrapup then return finish({ok = 'stale'}) end
if hget(key, 'after_call') == IS.away then
  redis.call('HDEL', key, 'after_call')
  set_interp_state(id, IS.away)
  return finish({ok = IS.away})
end
if hget(key, 'connected') ~= '1' then
  -- Offline for now: available again, but offered nothing until the socket resumes.
  set_interp_state(id, IS.available)
  return finish({ok = IS.available})
end
make_idle(id)
match(interp_langs(id))
return finish({ok = IS.available})
