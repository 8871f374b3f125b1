-- Rebuilds a pool's state from PostgreSQL's slots, unless it exists.
-- KEYS[1]: the promotion's base key; ARGV[1]: pool; ARGV[2]: next slot
-- (highest used + 1); ARGV[3..]: the free slots below it.
local key = KEYS[1] .. ':' .. ARGV[1]
if redis.call('EXISTS', key .. ':seeded') == 1 then
  return 0
end
redis.call('DEL', key .. ':free')
redis.call('SET', key .. ':next', ARGV[2])
for i = 3, #ARGV do
  redis.call('ZADD', key .. ':free', tonumber(ARGV[i]), ARGV[i])
end
redis.call('SET', key .. ':seeded', '1')
return 1
