-- wrapup_end: the wrap-up time is over; the interpreter is available again (or away).
-- ARGV[5..] = interp_id
local id = ARGV[5]
if not deadline_due('wrapup', id, '') then return finish({ok = 'stale'}) end
del_deadline('wrapup', id, '')
local key = k('interp', id)
if hget(key, 'state') ~= 'wrapup' then return finish({ok = 'stale'}) end
if hget(key, 'after_call') == 'away' then
  redis.call('HDEL', key, 'after_call')
  set_interp_state(id, 'away')
  return finish({ok = 'away'})
end
if hget(key, 'connected') ~= '1' then
  -- Offline for now: available again, but offered nothing until the socket resumes.
  set_interp_state(id, 'available')
  return finish({ok = 'available'})
end
make_idle(id)
match(interp_langs(id))
return finish({ok = 'available'})
