-- pick_relay: the relay a party's media offer goes to, checked, chosen and claimed at once.
-- ARGV[5..] = call_id, role ('kiosk' | 'interpreter'), the party's id, a relay to avoid (one
-- that just failed to answer; '' = none), the oldest heartbeat (ms) of a live relay, and the
-- comma-separated relays the node trusts (their registration key checked in Python).
-- The call keeps its relay while that relay is live; otherwise the least loaded live relay
-- with room (share of capacity, then CPU) is claimed for it. Both parties of a call run this,
-- so both legs always land on one relay. Not idempotent by op: it only reads, or claims.
local call_id, role, who, avoid, alive_since = ARGV[5], ARGV[6], ARGV[7], ARGV[8],
  tonumber(ARGV[9])
local allowed = {}
for _, id in ipairs(split(ARGV[10])) do allowed[id] = true end
local ckey = k(KEY.call, call_id)
if redis.call('EXISTS', ckey) == 0 then return encode({err = 'not_found'}) end
if hget(ckey, role) ~= who then return encode({err = 'forbidden'}) end
local state = hget(ckey, 'state')
if state ~= CS.connecting and state ~= CS.connected then return encode({err = 'conflict'}) end
local other = (role == 'kiosk') and ('i:' .. (hget(ckey, 'interpreter') or ''))
  or ('k:' .. (hget(ckey, 'kiosk') or ''))
local reply = {other = other, language = hget(ckey, 'language')}

local function live_url(id)
  if not allowed[id] then return nil end
  local beat = redis.call('ZSCORE', k(KEY.relays), id)
  if not beat or tonumber(beat) < alive_since then return nil end
  return hget(k(KEY.relay, id), 'url')
end

local current = hget(ckey, 'relay') or ''
if current ~= '' and current ~= avoid then
  local url = live_url(current)
  if url then
    reply.relay, reply.url, reply.moved = current, url, false
    return encode(reply)
  end
end
local best, best_load, best_cpu
for _, id in ipairs(redis.call('ZRANGEBYSCORE', k(KEY.relays), alive_since, '+inf')) do
  if id ~= avoid and id ~= current and allowed[id] then
    local r = redis.call('HMGET', k(KEY.relay, id), 'url', 'calls', 'capacity', 'cpu')
    local calls, cap, cpu = tonumber(r[2] or 0), tonumber(r[3] or 0), tonumber(r[4] or 0)
    if r[1] and cap > 0 and calls < cap then
      local load = calls / cap
      if not best or load < best_load or (load == best_load and cpu < best_cpu) then
        best, best_load, best_cpu, reply.url = id, load, cpu, r[1]
      end
    end
  end
end
if not best then return encode({err = 'unavailable'}) end
redis.call('HSET', ckey, 'relay', best)
reply.relay, reply.moved, reply.was = best, current ~= '', current
return encode(reply)
