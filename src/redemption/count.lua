-- Slots in use in each pool (next - 1 - free), or -1 where a pool has no
-- state. Read-only. KEYS[1]: the promotion's base key; ARGV: pool names.
local out = {}
for i, pool in ipairs(ARGV) do
  local key = KEYS[1] .. ':' .. pool
  if redis.call('EXISTS', key .. ':seeded') == 0 then
    out[i] = -1
  else
    out[i] = tonumber(redis.call('GET', key .. ':next') or '1') - 1 - redis.call('ZCARD', key .. ':free')
  end
end
return out
