-- rate: the kiosk rates its finished call (PROTOCOL.md section 15). Only a score is kept,
-- in the call's finished-call record; nothing said in the call is linked to it.
-- ARGV[5..] = kiosk_id, call_id, score, window_ms, pending_ttl_s, test_language
local prev = done_before()
if prev then return prev end
local kiosk, call_id, score = ARGV[5], ARGV[6], tonumber(ARGV[7])
local window, pending_ttl, test_lang = tonumber(ARGV[8]), tonumber(ARGV[9]), ARGV[10]
local ckey = k(KEY.call, call_id)
-- This kiosk's finished, answered, real call: anything else is as if there were none.
if hget(ckey, 'kiosk') ~= kiosk or hget(ckey, 'state') ~= CS.ended
    or hget(ckey, 'outcome') ~= 'answered'
    or (hget(ckey, 'orig_language') or hget(ckey, 'language')) == test_lang then
  return finish({err = 'not_found'})
end
local ended = tonumber(hget(ckey, 'ended_ms'))
if hget(ckey, 'rating') or NOW - ended > window then return finish({err = 'conflict'}) end
redis.call('HSET', ckey, 'rating', score)

-- The UTC day of the end (the records hash it is in): days since the epoch to a civil date
-- (Howard Hinnant's days_from_civil inverse).
local z = math.floor(ended / 86400000) + 719468
local era = math.floor(z / 146097)
local doe = z - era * 146097
local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524)
  - math.floor(doe / 146096)) / 365)
local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
local mp = math.floor((5 * doy + 2) / 153)
local d = doy - math.floor((153 * mp + 2) / 5) + 1
local m = mp < 10 and mp + 3 or mp - 9
local y = yoe + era * 400 + (m <= 2 and 1 or 0)
local rkey = k(KEY.records, string.format('%04d-%02d-%02d', y, m, d))

local stored = redis.call('HGET', rkey, call_id)
if stored then
  local record = cjson.decode(stored)
  record.rating = score
  redis.call('HSET', rkey, call_id, cjson.encode(record))
else
  -- The record writer has not folded the call's end yet: it merges this when it does.
  redis.call('SET', k(KEY.rating_pending, call_id), score, 'EX', pending_ttl)
end
return finish({ok = 'rated'})
