-- Seeds a pool from PostgreSQL's count, unless it has state already.
-- KEYS[1]: the pool's key; ARGV[1]: count; ARGV[2]: a new generation;
-- ARGV[3]: seconds the state lives (then it is seeded anew, which is what
-- bounds the life of a reservation never recorded).
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], 'n', ARGV[1], 'g', ARGV[2])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
