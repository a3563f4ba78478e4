-- places (read only): where waiting calls stand, for their kiosks' position and estimate.
-- ARGV[5..] = call_id, language, call_id, language, ...
-- Returns [[rank (-1 once offered), signed in, free now, serving_milli], ...] in that order.
local out, by_lang = {}, {}
for i = 5, #ARGV, 2 do
  local call_id, lang = ARGV[i], ARGV[i + 1]
  local facts = by_lang[lang]
  if not facts then
    facts = {redis.call('SCARD', k(KEY.logged_in, lang)), redis.call('ZCARD', k(KEY.idle, lang)),
      serving_milli(lang)}
    by_lang[lang] = facts
  end
  local rank = redis.call('ZRANK', k(KEY.queue, lang), call_id)
  out[#out + 1] = {rank or -1, facts[1], facts[2], facts[3]}
end
return cjson.encode(out)
