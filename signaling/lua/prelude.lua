-- Shared by every routing script (concatenated in front of each at load time).
-- ARGV[1] = key prefix (hash tag), ARGV[2] = now in ms, ARGV[3] = operation id ('' = none),
-- ARGV[4] = the requesting client ('' = none): messages for it are returned in the result's
-- 'self' list (so the node sends them after its direct reply) instead of its node's inbox.
-- Every key is built from the prefix by k(); all live in one Cluster slot.
local P = ARGV[1]
local NOW = tonumber(ARGV[2])
local OP = ARGV[3]
local QUIET = ARGV[4]
local SELF = {}
-- State changes made by this run ({kind, id, from, to}), returned so the node logs each once.
local CHANGES = {}
local function k(...) return P .. ':' .. table.concat({...}, ':') end

-- Messages for clients on their nodes, by client: one inbox entry per client per run
-- (an offer and the presence change it causes travel together).
local OUTBOX, OUT_ORDER = {}, {}

local function flush_outbox()
  for _, client in ipairs(OUT_ORDER) do
    local node = redis.call('GET', k(KEY.client_node, client))
    if node then
      local msgs = OUTBOX[client]
      local field, value = 'msg', cjson.encode(msgs[1])
      if #msgs > 1 then field, value = 'msgs', cjson.encode(msgs) end
      redis.call('XADD', k(KEY.node_inbox, node), 'MAXLEN', '~', 10000, '*', 'to', client,
        field, value)
    end
  end
end

-- A script's reply, with the state changes it made; its messages go out now.
local function encode(result)
  flush_outbox()
  if #CHANGES > 0 then result.changes = CHANGES end
  return cjson.encode(result)
end

local function done_before()
  if OP == '' then return nil end
  return redis.call('GET', k(KEY.done, OP))
end

local function finish(result)
  if #SELF > 0 then result.self = SELF end
  -- A repeated operation gets the same reply, but its changes were logged the first time;
  -- a refusal changed nothing, so it leaves nothing behind: running it again is as safe.
  if OP ~= '' and not result.err then
    redis.call('SET', k(KEY.done, OP), cjson.encode(result), 'EX', 3600)
  end
  return encode(result)
end

local function hget(key, field)
  local v = redis.call('HGET', key, field)
  if v == false then return nil end
  return v
end

-- Every change of a call's state goes through here (states from the generated CS table);
-- other fields to set go with it, in the same HSET.
local function set_call_state(ckey, call_id, state, ...)
  local old = hget(ckey, 'state')
  if old ~= state then
    redis.call('HSET', ckey, 'state', state, ...)
    CHANGES[#CHANGES + 1] = {'call', call_id, old or '', state}
  elseif select('#', ...) > 0 then
    redis.call('HSET', ckey, ...)
  end
end

local function split(s)
  local out = {}
  if not s or s == '' then return out end
  for part in string.gmatch(s, '[^,]+') do out[#out + 1] = part end
  return out
end

-- Put a message into the inbox of the node that holds the client's socket.
local function notify(client, msg)
  if client == QUIET then
    SELF[#SELF + 1] = msg
    return
  end
  if not OUTBOX[client] then
    OUTBOX[client] = {}
    OUT_ORDER[#OUT_ORDER + 1] = client
  end
  local queued = OUTBOX[client]
  queued[#queued + 1] = msg
end

local EVENTS_MAX = nil

local function event(ev, fields)
  EVENTS_MAX = EVENTS_MAX or tonumber(hget(k(KEY.cfg), 'events_max') or 1000000)
  local args = {'ev', ev, 'at', tostring(NOW)}
  for name, value in pairs(fields) do
    args[#args + 1] = name
    args[#args + 1] = tostring(value)
  end
  -- Trimmed by age by the sweeper (signaling/retention.py); this cap is only a safety
  -- against a flood (TSUNAGU_EVENTS_MAX_ENTRIES, written to cfg by Router.configure).
  redis.call('XADD', k(KEY.events), 'MAXLEN', '~', EVENTS_MAX, '*', unpack(args))
end

-- until_ms: when wrap-up ends (only for 'wrapup'), so consoles can count down.
local function set_interp_state(id, state, until_ms)
  local key = k(KEY.interp, id)
  local old = hget(key, 'state') or IS.offline
  if old ~= state then
    redis.call('HSET', key, 'state', state, 'since_ms', NOW)
    CHANGES[#CHANGES + 1] = {'interpreter', id, old, state}
    if until_ms then redis.call('HSET', key, 'until_ms', until_ms)
    else redis.call('HDEL', key, 'until_ms') end
    event('presence', {interp = id, from = old, to = state})
    notify('i:' .. id, {type = 'presence', status = (state == IS.away or state == IS.offline)
      and 'away' or 'available', state = state, since_ms = NOW, until_ms = until_ms})
  end
end

-- Interpreter is available and connected: list it in the idle set of each language.
local function make_idle(id)
  local key = k(KEY.interp, id)
  set_interp_state(id, IS.available)
  local idle = tonumber(hget(key, 'idle_since_ms') or NOW)
  for _, lang in ipairs(split(hget(key, 'languages'))) do
    redis.call('ZADD', k(KEY.idle, lang), idle, id)
  end
end

local function unidle(id)
  for _, lang in ipairs(split(hget(k(KEY.interp, id), 'languages'))) do
    redis.call('ZREM', k(KEY.idle, lang), id)
  end
end

local function add_deadline(kind, a, b, due)
  redis.call('ZADD', k(KEY.deadlines), due, kind .. '|' .. a .. '|' .. b)
end

local function del_deadline(kind, a, b)
  redis.call('ZREM', k(KEY.deadlines), kind .. '|' .. a .. '|' .. b)
end

-- A deadline script acts only if its member is still set and due: the sweeper may hold a
-- member that a client action (a resume, an answer) removed or moved since it was read.
local function deadline_due(kind, a, b)
  local due = redis.call('ZSCORE', k(KEY.deadlines), kind .. '|' .. a .. '|' .. b)
  return due and tonumber(due) <= NOW
end

local function has_deadline(kind, a, b)
  return redis.call('ZSCORE', k(KEY.deadlines), kind .. '|' .. a .. '|' .. b) ~= false
end

local function cfg_ms(name, default)
  return tonumber(hget(k(KEY.cfg), name) or default)
end

-- The ring stopped: reason 'declined', 'timeout' or 'cancelled' (PROTOCOL.md section 5).
local function tell_offer_cancelled(interp_id, call_id, offer_id, reason)
  notify('i:' .. interp_id, {type = 'call.offer_cancelled', call_id = call_id,
    offer_id = offer_id, reason = reason})
end

-- The messages that tell an interpreter of its ringing offer, and a party of its connected
-- call: sent by the transitions, and sent again by the connect transitions on a resume.
local function offer_message(call_id, offer_id)
  local ckey = k(KEY.call, call_id)
  local offered = tonumber(hget(ckey, 'offered_ms') or NOW)
  local procedure = hget(ckey, 'procedure')
  local left = offered + cfg_ms('offer_timeout_ms', 20000) - NOW
  return {type = 'call.offer', call_id = call_id, offer_id = offer_id,
    language = hget(ckey, 'language'), ward = hget(ckey, 'ward'), counter = hget(ckey, 'counter'),
    procedure = (procedure and procedure ~= '') and procedure or nil,
    priority = hget(ckey, 'priority'),
    waited_s = (NOW - tonumber(hget(ckey, 'enqueued_ms'))) / 1000,
    expires_in_s = math.max(0, left) / 1000}
end

local function connected_message(call_id, party)
  local ckey = k(KEY.call, call_id)
  local lang = hget(ckey, 'language')
  if party == 'kiosk' then
    local interp_id = hget(ckey, 'interpreter') or ''
    return {type = 'call.connected', call_id = call_id, role = 'kiosk',
      peer = {name = hget(k(KEY.interp, interp_id), 'name') or interp_id, language = lang}}
  end
  local ward, counter = hget(ckey, 'ward') or '', hget(ckey, 'counter') or ''
  return {type = 'call.connected', call_id = call_id, role = 'interpreter',
    peer = {name = ward .. ' ' .. counter, ward = ward, counter = counter, language = lang}}
end

local function offer(call_id, interp_id, lang)
  local ckey = k(KEY.call, call_id)
  local offer_id = 'o_' .. redis.sha1hex(call_id .. interp_id .. NOW .. OP):sub(1, 16)
  local timeout_ms = cfg_ms('offer_timeout_ms', 20000)
  redis.call('ZREM', k(KEY.queue, lang), call_id)
  set_call_state(ckey, call_id, CS.offered, 'interpreter', interp_id, 'offer_id', offer_id,
    'offered_ms', NOW)
  redis.call('HSET', k(KEY.interp, interp_id), 'call_id', call_id, 'offer_id', offer_id)
  unidle(interp_id)
  set_interp_state(interp_id, IS.offered)
  add_deadline('offer', call_id, offer_id, NOW + timeout_ms)
  event('offered', {call = call_id, interp = interp_id, offer = offer_id})
  notify('i:' .. interp_id, offer_message(call_id, offer_id))
end

-- Offer waiting calls to free interpreters: calls in order of effective wait across the
-- given languages; each goes to the longest-idle free interpreter who has not passed on it.
local function match(langs)
  local seen, heads = {}, {}
  for _, lang in ipairs(langs) do
    if not seen[lang] then
      seen[lang] = true
      local q = redis.call('ZRANGE', k(KEY.queue, lang), 0, 49, 'WITHSCORES')
      for i = 1, #q, 2 do heads[#heads + 1] = {q[i], tonumber(q[i + 1]), lang} end
    end
  end
  table.sort(heads, function(a, b) return a[2] < b[2] end)
  for _, head in ipairs(heads) do
    local call_id, lang = head[1], head[3]
    local free = redis.call('ZRANGE', k(KEY.idle, lang), 0, 49)
    for _, interp_id in ipairs(free) do
      if redis.call('SISMEMBER', k(KEY.passed, call_id), interp_id) == 0 then
        offer(call_id, interp_id, lang)
        break
      end
    end
  end
end

-- The call goes back to its original place and the interpreter is remembered as passed.
local function requeue(call_id, interp_id, passed)
  local ckey = k(KEY.call, call_id)
  local lang = hget(ckey, 'language')
  set_call_state(ckey, call_id, CS.queued, 'interpreter', '', 'offer_id', '')
  redis.call('ZADD', k(KEY.queue, lang), tonumber(hget(ckey, 'score')), call_id)
  if passed then redis.call('SADD', k(KEY.passed, call_id), interp_id) end
  redis.call('HDEL', k(KEY.interp, interp_id), 'call_id', 'offer_id')
  return lang
end

-- The fence every answer to an offer passes: the call exists, this offer is the live one
-- (else 'conflict': a stale offer loses), and it was made to this interpreter ('forbidden').
local function check_offer(ckey, interp_id, offer_id)
  if redis.call('EXISTS', ckey) == 0 then return 'not_found' end
  if hget(ckey, 'state') ~= CS.offered or hget(ckey, 'offer_id') ~= offer_id then
    return 'conflict'
  end
  if hget(ckey, 'interpreter') ~= interp_id then return 'forbidden' end
  return nil
end

-- Forget a client's socket registration if ``node`` still holds it; false if another node
-- (a newer socket) holds it now, in which case the disconnect is stale.
local function release_client(client, node)
  if node == '' then return true end
  if redis.call('GET', k(KEY.client_node, client)) ~= node then
    redis.call('SREM', k(KEY.node_clients, node), client)
    return false
  end
  redis.call('DEL', k(KEY.client_node, client))
  redis.call('SREM', k(KEY.node_clients, node), client)
  return true
end

local function interp_langs(id) return split(hget(k(KEY.interp, id), 'languages')) end

-- How much of a language's queue its interpreters will take as they come free, in thousandths
-- (the wait estimate's rate, signaling/wait_estimate.py): each one signed in who is not away
-- (nor going away after the call) counts 1 / the number of their languages.
local function serving_milli(lang)
  local total = 0
  for _, id in ipairs(redis.call('SMEMBERS', k(KEY.logged_in, lang))) do
    local key = k(KEY.interp, id)
    local state, after = hget(key, 'state'), hget(key, 'after_call')
    if state and state ~= IS.away and state ~= IS.offline and after ~= IS.away then
      total = total + math.floor(1000 / math.max(1, #split(hget(key, 'languages'))))
    end
  end
  return total
end

local function concat(a, b)
  local out = {}
  for _, v in ipairs(a) do out[#out + 1] = v end
  for _, v in ipairs(b) do out[#out + 1] = v end
  return out
end

-- End a call for good. outcome: answered | abandoned | failed.
local function end_call(call_id, outcome, reason, by)
  local ckey = k(KEY.call, call_id)
  local state = hget(ckey, 'state')
  local lang = hget(ckey, 'language')
  local kiosk = hget(ckey, 'kiosk')
  redis.call('ZREM', k(KEY.queue, lang), call_id)
  local answered = hget(ckey, 'answered_ms')
  local duration = nil
  if answered and answered ~= '' then duration = (NOW - tonumber(answered)) / 1000 end
  local final = (outcome == 'answered') and CS.ended or outcome
  set_call_state(ckey, call_id, final, 'ended_ms', NOW, 'reason', reason, 'outcome', outcome)
  redis.call('SREM', k(KEY.live_calls), call_id)
  redis.call('EXPIRE', ckey, 86400)
  redis.call('DEL', k(KEY.passed, call_id))
  local current = redis.call('GET', k(KEY.kiosk_call, kiosk)) == call_id
  if current then redis.call('DEL', k(KEY.kiosk_call, kiosk)) end
  del_deadline('maxwait', call_id, '')
  del_deadline('nointerp', call_id, '')
  del_deadline('cgrace', call_id, 'kiosk')
  del_deadline('cgrace', call_id, 'interpreter')
  del_deadline('kgrace', call_id, '')
  local msg = {type = 'call.ended', call_id = call_id, reason = reason, by = by,
    duration_s = duration}
  if current and QUIET ~= 'k:' .. kiosk then
    -- Kept until the kiosk has it, whether or not a node holds it now: cnode may still name
    -- a node that died. Its node deletes it once sent live (Router.ended_seen); else the
    -- kiosk's next kiosk_connect, on any node, tells it (docs/reliability.md).
    redis.call('SET', k(KEY.kiosk_missed_end, kiosk), cjson.encode(msg), 'PX', 3600000)
  end
  if redis.call('EXISTS', k(KEY.client_node, 'k:' .. kiosk)) == 1 then
    notify('k:' .. kiosk, msg)
  end
  event('ended', {call = call_id, outcome = outcome, reason = reason, by = by or '',
    lang = lang, from = state or ''})
  return state, msg
end

-- A waiting call ends before anyone answered (a cancel, or the kiosk lost past its grace):
-- a ringing offer is withdrawn and that interpreter is free again.
local function abandon_waiting(call_id, reason, by)
  local ckey = k(KEY.call, call_id)
  local langs = {}
  if hget(ckey, 'state') == CS.offered then
    local interp_id, offer_id = hget(ckey, 'interpreter'), hget(ckey, 'offer_id')
    del_deadline('offer', call_id, offer_id)
    redis.call('HDEL', k(KEY.interp, interp_id), 'call_id', 'offer_id')
    tell_offer_cancelled(interp_id, call_id, offer_id, 'cancelled')
    if hget(k(KEY.interp, interp_id), 'connected') == '1' then
      make_idle(interp_id)
      langs = interp_langs(interp_id)
    end
  end
  end_call(call_id, 'abandoned', reason, by)
  if #langs > 0 then match(langs) end
end

-- The interpreter's call is over: wrap-up, then available (or away if asked meanwhile).
local function start_wrapup(interp_id)
  local key = k(KEY.interp, interp_id)
  local wrap_ms = cfg_ms('wrapup_ms', 15000)
  redis.call('HDEL', key, 'call_id', 'offer_id')
  redis.call('HSET', key, 'idle_since_ms', NOW)
  set_interp_state(interp_id, IS.wrapup, NOW + wrap_ms)
  add_deadline('wrapup', interp_id, '', NOW + wrap_ms)
end
