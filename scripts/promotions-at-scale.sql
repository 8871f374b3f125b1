-- N promotions (psql -v n=N), as the scale benchmarks load them: 99 %
-- targeted at 3 of 50,000 products (20 % also at one of 200 categories,
-- 10 % at one of 100 brands, 5 % excluding a product), 1 % untargeted.
INSERT INTO promotions (id, name, scope, priority, stackable, stop_further_rules, requires_coupon, active,
                        targeted, action_kind, basis_points, created_at, updated_at)
SELECT gen_random_uuid(), 'bench ' || i, 'CART', i % 10, true, false, false, true,
       i % 100 <> 0, 'PERCENTAGE_OFF', 100 + i % 900, now() - i * interval '1 second', now()
FROM generate_series(1, :n) AS i;
INSERT INTO promotion_targets (promotion_id, kind, value)
SELECT p.id, 'PRODUCT', 'sku-' || floor(random() * 50000)::int FROM promotions p, generate_series(1, 3) WHERE p.targeted
ON CONFLICT DO NOTHING;
INSERT INTO promotion_targets (promotion_id, kind, value)
SELECT p.id, 'CATEGORY', 'cat-' || floor(random() * 200)::int FROM promotions p WHERE p.targeted AND random() < 0.2;
INSERT INTO promotion_targets (promotion_id, kind, value)
SELECT p.id, 'BRAND', 'brand-' || floor(random() * 100)::int FROM promotions p WHERE p.targeted AND random() < 0.1;
INSERT INTO promotion_targets (promotion_id, kind, value)
SELECT p.id, 'EXCLUDE_PRODUCT', 'sku-' || floor(random() * 50000)::int FROM promotions p WHERE random() < 0.05
ON CONFLICT DO NOTHING;
VACUUM ANALYZE promotions;
VACUUM ANALYZE promotion_targets;
