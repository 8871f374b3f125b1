-- Uses counted or reserved in each pool, or -1 where a pool has no state.
-- Read-only. KEYS: the pools' keys.
local out = {}
for i, key in ipairs(KEYS) do
  out[i] = tonumber(redis.call('HGET', key, 'n') or '-1')
end
return out
