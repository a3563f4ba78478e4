-- grace: a disconnected party did not come back in time.
-- ARGV[5..] = kind ('kgrace' | 'cgrace' | 'igrace'), a, b  (the deadline member's parts)
local kind, a, b = ARGV[5], ARGV[6], ARGV[7]
if not deadline_due(kind, a, b) then return finish({ok = 'stale'}) end
del_deadline(kind, a, b)
if kind == 'kgrace' then
  local ckey = k(KEY.call, a)
  local state = hget(ckey, 'state')
  if state ~= CS.queued and state ~= CS.offered then return finish({ok = 'stale'}) end
  abandon_waiting(a, 'peer_lost', nil)
  return finish({ok = CS.abandoned})
elseif kind == 'cgrace' then
  local ckey = k(KEY.call, a)
  local state = hget(ckey, 'state')
  if state ~= CS.connecting and state ~= CS.connected then return finish({ok = 'stale'}) end
  local interp_id = hget(ckey, 'interpreter')
  local _, msg = end_call(a, 'answered', 'peer_lost', nil)
  notify('i:' .. interp_id, msg)
  start_wrapup(interp_id)
  return finish({ok = CS.ended, relay = hget(ckey, 'relay')})
else
  local key = k(KEY.interp, a)
  if hget(key, 'connected') == '1' then return finish({ok = 'stale'}) end
  for _, lang in ipairs(interp_langs(a)) do
    redis.call('SREM', k(KEY.logged_in, lang), a)
    redis.call('ZREM', k(KEY.idle, lang), a)
    if redis.call('SCARD', k(KEY.logged_in, lang)) == 0 then
      -- The last interpreter for the language has gone: its waiting calls fail fast.
      local due = NOW + cfg_ms('nointerp_ms', 0)
      for _, call_id in ipairs(redis.call('ZRANGE', k(KEY.queue, lang), 0, -1)) do
        add_deadline('nointerp', call_id, '', due)
      end
    end
  end
  if hget(key, 'state') ~= IS.in_call then
    del_deadline('wrapup', a, '')
    redis.call('HDEL', key, 'after_call')
    set_interp_state(a, IS.offline)
  end
  return finish({ok = IS.offline})
end
