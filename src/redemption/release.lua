-- Gives slots back to their pools.
-- KEYS[1]: the promotion's base key; ARGV[1]: order id, or "" for none;
-- ARGV[2..]: pairs of pool name and slot.
-- Drops the order's pending reservation (if any) and puts each slot back in
-- its pool's free set, unless the pool has no state (then a later seed
-- from PostgreSQL rebuilds it, slot included).
local base = KEYS[1]
if ARGV[1] ~= '' then
  redis.call('HDEL', base .. ':pending', ARGV[1])
end
local freed = 0
for i = 2, #ARGV, 2 do
  local key = base .. ':' .. ARGV[i]
  if redis.call('EXISTS', key .. ':seeded') == 1 then
    freed = freed + redis.call('ZADD', key .. ':free', tonumber(ARGV[i + 1]), ARGV[i + 1])
  end
end
return freed
