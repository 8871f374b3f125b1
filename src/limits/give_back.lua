-- Takes reserved uses back: for each pool, one use, unless the pool was
-- seeded anew since (its generation differs: the new count never held it).
-- KEYS: the pools' keys; ARGV: the generation each reservation was made in
-- ("" for a recorded use given back by a release: taken back whatever the
-- generation, since every seed after the commit counted it).
local taken = 0
for i, key in ipairs(KEYS) do
  local g = redis.call('HGET', key, 'g')
  if g and (ARGV[i] == '' or g == ARGV[i]) and tonumber(redis.call('HGET', key, 'n')) > 0 then
    redis.call('HINCRBY', key, 'n', -1)
    taken = taken + 1
  end
end
return taken
