-- Pending reservations older than ARGV[1] (unix seconds): {order, value, ...}.
-- KEYS[1]: the promotion's base key. Bounded by ARGV[2] entries per call.
local all = redis.call('HGETALL', KEYS[1] .. ':pending')
local out = {}
for i = 1, #all, 2 do
  local ts = tonumber(string.match(all[i + 1], '^(%d+)|'))
  if ts and ts < tonumber(ARGV[1]) then
    out[#out + 1] = all[i]
    out[#out + 1] = all[i + 1]
    if #out >= 2 * tonumber(ARGV[2]) then break end
  end
end
return out
