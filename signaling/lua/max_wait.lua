-- max_wait: a waiting call reached the maximum wait ('maxwait'), or its language still has
-- nobody logged in after the fail-fast wait ('nointerp').
-- ARGV[5..] = kind, call_id
local kind, call_id = ARGV[5], ARGV[6]
if not deadline_due(kind, call_id, '') then return finish({ok = 'stale'}) end
del_deadline(kind, call_id, '')
local ckey = k(KEY.call, call_id)
local state = hget(ckey, 'state')
if state == CS.offered then
  -- The phone is ringing: let the offer finish, then look again.
  add_deadline(kind, call_id, '', NOW + 1000)
  return finish({ok = 'later'})
end
if state ~= CS.queued then return finish({ok = 'stale'}) end
if kind == 'nointerp' then
  if redis.call('SCARD', k(KEY.logged_in, hget(ckey, 'language'))) > 0 then
    return finish({ok = 'stale'})
  end
  end_call(call_id, 'failed', 'no_interpreter', nil)
else
  end_call(call_id, 'failed', 'timeout', nil)
end
return finish({ok = CS.failed})
