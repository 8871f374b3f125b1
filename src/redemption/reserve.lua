-- Reserves one slot in each pool of one promotion, all or nothing.
-- KEYS[1]: the promotion's base key, "<prefix>{promo:<id>}" (its hash tag
--          puts every key below on one Redis Cluster slot).
-- ARGV[1]: order id; ARGV[2]: now (unix seconds);
-- ARGV[3..]: pairs of pool name and limit.
-- Returns {"OK", "<now>|<pool>=<slot>;..."}, {"HELD", same} when the order
-- already holds a reservation here, {"SEED", pool} when a pool has no state
-- (Redis lost it: the caller seeds it from PostgreSQL, never assumes 0), or
-- {"FULL", pool} when a pool has no slot left under its limit.
local base = KEYS[1]
local orders = base .. ':pending'
local held = redis.call('HGET', orders, ARGV[1])
if held then
  return {'HELD', held}
end
local pools, limits, slots = {}, {}, {}
for i = 3, #ARGV, 2 do
  pools[#pools + 1] = ARGV[i]
  limits[#limits + 1] = tonumber(ARGV[i + 1])
end
for i, pool in ipairs(pools) do
  local key = base .. ':' .. pool
  if redis.call('EXISTS', key .. ':seeded') == 0 then
    return {'SEED', pool}
  end
  local lowest = redis.call('ZRANGE', key .. ':free', 0, 0)[1]
  if lowest and tonumber(lowest) <= limits[i] then
    slots[i] = tonumber(lowest)
  else
    local nxt = tonumber(redis.call('GET', key .. ':next') or '1')
    if nxt > limits[i] then
      return {'FULL', pool}
    end
    slots[i] = nxt
  end
end
local parts = {}
for i, pool in ipairs(pools) do
  local key = base .. ':' .. pool
  if redis.call('ZREM', key .. ':free', slots[i]) == 0 then
    redis.call('SET', key .. ':next', slots[i] + 1)
  end
  parts[#parts + 1] = pool .. '=' .. slots[i]
end
local value = ARGV[2] .. '|' .. table.concat(parts, ';')
redis.call('HSET', orders, ARGV[1], value)
return {'OK', value}
