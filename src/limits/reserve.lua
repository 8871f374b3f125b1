-- Reserves one use in each pool, all or nothing.
-- KEYS: the pools' keys (one promotion's: their hash tag {promo:<id>} puts
--       them on one Redis Cluster slot); ARGV: each pool's limit.
-- A pool's key is a hash {n = uses counted or reserved, g = generation}.
-- Returns {"OK", g1, g2, ...}, {"SEED", i} when pool i has no state (Redis
-- lost it or it expired: the caller seeds it from PostgreSQL, never
-- assumes 0), or {"FULL", i} when pool i has reached its limit.
for i, key in ipairs(KEYS) do
  local n = redis.call('HGET', key, 'n')
  if not n then
    return {'SEED', i}
  end
  if tonumber(n) >= tonumber(ARGV[i]) then
    return {'FULL', i}
  end
end
local out = {'OK'}
for i, key in ipairs(KEYS) do
  redis.call('HINCRBY', key, 'n', 1)
  out[#out + 1] = redis.call('HGET', key, 'g')
end
return out
