-- Marks an order's reservation as committed: its slots stay taken and the
-- pending entry goes (the reconciler only looks at pending entries).
-- KEYS[1]: the promotion's base key; ARGV[1]: order id.
return redis.call('HDEL', KEYS[1] .. ':pending', ARGV[1])
