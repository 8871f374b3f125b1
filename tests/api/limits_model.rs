//! A randomized model test of the usage limits: three replicas (two in this
//! process, one a real binary that is SIGKILLed and restarted) on one
//! database and one Redis of the test's own. Phases of applies (customers
//! with and without coupons), releases and re-applies of released orders,
//! with limit changes on every pool kind (lower, raise, add, remove) and
//! FLUSHALL between them, are drawn from a seed. A plain model of the
//! rules is the reference:
//! - a concurrent phase never leaves a pool above max(its limit, its count
//!   before the phase);
//! - a sequential phase (on replicas that were not killed within the
//!   counters' ttl) gets exactly the model's accepts and rejects;
//! - after each phase PostgreSQL's usage counts equal its redemptions;
//! - at the end, everything released and the ttl passed, each pool accepts
//!   exactly its limit.
//!
//! `MODEL_SEED=<seed>` replays a seed (it is printed); `MODEL_PHASES`
//! sets the size (default 24 phases, about 1,500 operations);
//! `scripts/model-test` runs a larger one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use rand::rngs::StdRng;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{
    Binary, OwnRedis, TestApp, USAGE_DRIFT_SQL, admin_client, free_port, fresh_database_url, promotion_input, rows,
    seeded, spawn_app_on_database,
};

const TTL: Duration = Duration::from_secs(2);
/// Totals whose shards' quotas add up to more than the limit allows (they
/// may reach the count only, where a lowered limit left it above).
const QUOTAS_OVER_LIMIT_SQL: &str = "SELECT count(*) FROM (
    SELECT scope, owner_id, sum(used) AS used, sum(quota) AS quota FROM usage_counts
    WHERE customer_id = '' GROUP BY 1, 2) t
  WHERE t.quota > greatest(usage_limit_of(t.scope, t.owner_id), t.used)";
const CUSTOMERS: usize = 5;
const APPLY: &str = "mutation($i: ApplyPromotionsInput!) { applyPromotions(input: $i) {
    applied { promotionId couponCode } redemption { orderId } } }";

/// A pool of the model: (kind, owner index, customer).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Pool {
    /// 0: the automatic promotion A, 1: the coupon promotion B.
    Promotion(usize),
    PromotionCustomer(usize, String),
    /// 0: coupon K0, 1: coupon K1 (both of B).
    Coupon(usize),
    CouponCustomer(usize, String),
}

/// The limits in force: promotion (total, per customer) x2, coupon (total, per customer) x2.
#[derive(Debug, Clone, Default)]
struct Limits {
    promotion: [(Option<i32>, Option<i32>); 2],
    coupon: [(Option<i32>, Option<i32>); 2],
}

impl Limits {
    fn of(&self, pool: &Pool) -> Option<i32> {
        match pool {
            Pool::Promotion(i) => self.promotion[*i].0,
            Pool::PromotionCustomer(i, _) => self.promotion[*i].1,
            Pool::Coupon(i) => self.coupon[*i].0,
            Pool::CouponCustomer(i, _) => self.coupon[*i].1,
        }
    }
}

/// A counted order: its customer and what it used (promotion B's coupon, if any).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Order {
    customer: String,
    a: bool,
    b: Option<usize>,
}

impl Order {
    fn pools(&self) -> Vec<Pool> {
        let c = &self.customer;
        let mut pools = Vec::new();
        if self.a {
            pools.extend([Pool::Promotion(0), Pool::PromotionCustomer(0, c.clone())]);
        }
        if let Some(k) = self.b {
            pools.extend([
                Pool::Promotion(1),
                Pool::PromotionCustomer(1, c.clone()),
                Pool::Coupon(k),
                Pool::CouponCustomer(k, c.clone()),
            ]);
        }
        pools
    }
}

/// The plain model: counted orders by id.
#[derive(Debug, Default, Clone)]
struct Model {
    orders: BTreeMap<String, Order>,
}

impl Model {
    fn count(&self, pool: &Pool) -> i64 {
        self.orders.values().filter(|o| o.pools().contains(pool)).count() as i64
    }
    fn counts(&self) -> BTreeMap<Pool, i64> {
        let mut counts = BTreeMap::new();
        for order in self.orders.values() {
            for pool in order.pools() {
                *counts.entry(pool).or_default() += 1;
            }
        }
        counts
    }
    fn admits(&self, limits: &Limits, pools: &[Pool]) -> bool {
        pools
            .iter()
            .all(|p| limits.of(p).is_none_or(|l| self.count(p) < i64::from(l)))
    }
    /// What applying `customer` with coupon `k` does under `limits`.
    fn predict(&self, limits: &Limits, customer: &str, k: Option<usize>) -> Option<Order> {
        let c = customer.to_owned();
        let a = self.admits(limits, &[Pool::Promotion(0), Pool::PromotionCustomer(0, c.clone())]);
        let b = k.filter(|k| {
            self.admits(
                limits,
                &[
                    Pool::Promotion(1),
                    Pool::PromotionCustomer(1, c.clone()),
                    Pool::Coupon(*k),
                    Pool::CouponCustomer(*k, c.clone()),
                ],
            )
        });
        (a || b.is_some()).then_some(Order { customer: c, a, b })
    }
}

struct World {
    apps: Vec<Arc<TestApp>>,
    binary: Option<Binary>,
    binary_port: u16,
    database_url: String,
    prefix: String,
    redis: OwnRedis,
    client: reqwest::Client,
    ids: [Uuid; 2],
    coupons: [Uuid; 2],
    limits: Limits,
    next_order: usize,
}

const CODES: [&str; 2] = ["MODEL-K0", "MODEL-K1"];

impl World {
    fn binary_env(&self) -> Vec<(String, String)> {
        vec![
            ("REDIS_URL".into(), self.redis.url()),
            ("USAGE_COUNTER_TTL".into(), format!("{}s", TTL.as_secs())),
        ]
    }

    async fn start_binary(&mut self) {
        let env = self.binary_env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.binary = Some(Binary::start(&self.database_url, &self.prefix, self.binary_port, false, &env).await);
    }

    /// The replicas' endpoints, cheap to share with concurrent tasks.
    fn replicas(&self) -> Arc<Replicas> {
        let mut endpoints: Vec<String> = self.apps.iter().map(|a| format!("{}/graphql", a.address)).collect();
        endpoints.push(format!("http://127.0.0.1:{}/graphql", self.binary_port));
        Arc::new(Replicas {
            endpoints,
            client: self.client.clone(),
            ids: self.ids,
        })
    }

    fn fresh_order(&mut self) -> String {
        self.next_order += 1;
        format!("m-{}", self.next_order)
    }

    /// Sets one limit (through the admin API, replica A), as the model's `limits`.
    async fn set_limit(&mut self, which: usize, value: Option<i32>) {
        let app = &self.apps[0];
        match which {
            0..=3 => {
                let (p, per_customer) = (which / 2, which % 2 == 1);
                let slot = &mut self.limits.promotion[p];
                if per_customer {
                    slot.1 = value;
                } else {
                    slot.0 = value;
                }
                let (total, per) = *slot;
                let extra = if p == 1 {
                    json!({ "requiresCoupon": true })
                } else {
                    json!({})
                };
                let mut input = promotion_input(extra);
                input["totalUsageLimit"] = json!(total);
                input["usageLimitPerCustomer"] = json!(per);
                app.data(
                    "mutation($id: ID!, $i: PromotionInput!) { updatePromotion(id: $id, input: $i) { id } }",
                    json!({ "id": self.ids[p], "i": input }),
                )
                .await;
            }
            _ => {
                let (k, per_customer) = ((which - 4) / 2, which % 2 == 1);
                let field = if per_customer {
                    "usageLimitPerCustomer"
                } else {
                    "usageLimit"
                };
                if per_customer {
                    self.limits.coupon[k].1 = value;
                } else {
                    self.limits.coupon[k].0 = value;
                }
                app.data(
                    "mutation($c: String!, $i: UpdateCouponInput!) { updateCoupon(code: $c, input: $i) { code } }",
                    json!({ "c": CODES[k], "i": { field: value } }),
                )
                .await;
            }
        }
    }

    /// PostgreSQL's truth: the counted orders.
    async fn truth(&self) -> Model {
        let sql = "SELECT r.order_id, r.customer_id, rp.promotion_id, rp.coupon_id FROM redemptions r
                   JOIN redemption_promotions rp ON rp.redemption_id = r.id WHERE r.status = 'REDEEMED'";
        let mut model = Model::default();
        for row in rows(&self.apps[0], sql).await {
            let order: String = row.try_get("", "order_id").unwrap();
            let customer: String = row.try_get("", "customer_id").unwrap();
            let promotion: Uuid = row.try_get("", "promotion_id").unwrap();
            let coupon: Option<Uuid> = row.try_get("", "coupon_id").unwrap();
            let entry = model.orders.entry(order).or_insert(Order {
                customer,
                a: false,
                b: None,
            });
            if promotion == self.ids[0] {
                entry.a = true;
            } else {
                entry.b = coupon.and_then(|c| self.coupons.iter().position(|k| *k == c));
            }
        }
        model
    }
}

fn customer(rng: &mut StdRng) -> String {
    format!("cust-{}", rng.random_range(0..CUSTOMERS))
}

fn coupon(rng: &mut StdRng) -> Option<usize> {
    match rng.random_range(0..4) {
        0 | 1 => None,
        k => Some(k - 2),
    }
}

fn random_limit(rng: &mut StdRng) -> Option<i32> {
    (rng.random_range(0..3) != 0).then(|| rng.random_range(1..=12))
}

#[tokio::test]
async fn limits_hold_against_a_model_under_concurrency_limit_changes_flushall_and_sigkill() {
    let (seed, mut rng) = seeded("MODEL_SEED");
    let phases: usize = std::env::var("MODEL_PHASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(24);
    eprintln!("limits model: MODEL_SEED={seed} MODEL_PHASES={phases}");

    let redis = OwnRedis::start().await;
    let database_url = fresh_database_url().await;
    let prefix = format!("model:{}:", Uuid::now_v7().simple());
    let (redis_url, p) = (redis.url(), prefix.clone());
    let configure = move |c: &mut promotions::config::Config| {
        c.redis_url = redis_url.clone();
        c.redis_key_prefix = p.clone();
        c.usage_counter_ttl = TTL;
    };
    let a = spawn_app_on_database(database_url.clone(), configure.clone()).await;
    let b = spawn_app_on_database(database_url.clone(), configure).await;
    let ids = [
        a.create_promotion(promotion_input(json!({ "name": "A" }))).await,
        a.create_promotion(promotion_input(json!({ "name": "B", "requiresCoupon": true })))
            .await,
    ];
    for code in CODES {
        a.create_coupon(json!({ "promotionId": ids[1], "code": code })).await;
    }
    let coupon_ids: Vec<Uuid> = rows(&a, "SELECT id FROM coupons ORDER BY code")
        .await
        .iter()
        .map(|r| r.try_get("", "id").unwrap())
        .collect();
    let mut world = World {
        apps: vec![Arc::new(a), Arc::new(b)],
        binary: None,
        binary_port: free_port(),
        database_url,
        prefix,
        redis,
        client: admin_client(),
        ids: [ids[0].parse().unwrap(), ids[1].parse().unwrap()],
        coupons: [coupon_ids[0], coupon_ids[1]],
        limits: Limits::default(),
        next_order: 0,
    };
    world.start_binary().await;
    // Every replica prices both promotions before the run.
    let probe = json!({
        "currency": "EUR",
        "customer": { "id": "probe" },
        "couponCodes": [CODES[0]],
        "lines": [{ "id": "l", "productId": "p", "quantity": 1, "unitPrice": 10_000 }],
    });
    for app in &world.apps {
        app.wait_until_priced(&probe, 1900).await;
    }

    let mut killed_at: Option<std::time::Instant> = None;
    let mut operations = 0usize;
    for phase in 0..phases {
        // Between phases: limit changes, sometimes FLUSHALL or a SIGKILL.
        for _ in 0..rng.random_range(0..3) {
            let which = rng.random_range(0..8);
            let value = random_limit(&mut rng);
            world.set_limit(which, value).await;
        }
        if rng.random_range(0..5) == 0 {
            world.redis.flushall().await;
        }
        let before = world.truth().await;
        let settled = killed_at.is_none_or(|t| t.elapsed() > TTL + Duration::from_millis(500));
        if settled && phase % 3 == 2 {
            // Sequential, on the in-process replicas: exactly the model.
            let mut model = before.clone();
            for _ in 0..40 {
                let r = rng.random_range(0..2);
                operations += 1;
                if rng.random_range(0..4) == 0 && !model.orders.is_empty() {
                    let order = model
                        .orders
                        .keys()
                        .nth(rng.random_range(0..model.orders.len()))
                        .unwrap()
                        .clone();
                    world.replicas().release(r, &order).await.unwrap();
                    model.orders.remove(&order);
                    continue;
                }
                let (c, k) = (customer(&mut rng), coupon(&mut rng));
                let order = world.fresh_order();
                let got = world.replicas().apply(r, &order, &c, k).await.unwrap();
                let want = model.predict(&world.limits, &c, k);
                assert_eq!(
                    got, want,
                    "seed {seed}, phase {phase}: {order} of {c} with {k:?} under {:?}",
                    world.limits
                );
                if let Some(o) = want {
                    model.orders.insert(order, o);
                }
            }
            assert_eq!(world.truth().await.orders, model.orders, "seed {seed}, phase {phase}");
        } else {
            // Concurrent, on every replica; sometimes the binary dies in the middle.
            let kill = world.binary.is_some() && rng.random_range(0..4) == 0;
            let mut tasks = Vec::new();
            let released: Vec<String> = before
                .orders
                .keys()
                .filter(|_| rng.random_range(0..4) == 0)
                .cloned()
                .collect();
            let replicas = world.replicas();
            for order in released {
                let (h, r, again) = (replicas.clone(), rng.random_range(0..3), rng.random_bool(0.5));
                let (c, k) = (customer(&mut rng), coupon(&mut rng));
                tasks.push(tokio::spawn(async move {
                    let _ = h.release(r, &order).await;
                    // A released order is applied again, as a new redemption, now and then.
                    if again {
                        let _ = h.apply(r, &order, &c, k).await;
                    }
                }));
            }
            for _ in 0..60 {
                let (h, r) = (replicas.clone(), rng.random_range(0..3));
                let (c, k, order) = (customer(&mut rng), coupon(&mut rng), world.fresh_order());
                tasks.push(tokio::spawn(async move {
                    let _ = h.apply(r, &order, &c, k).await;
                }));
            }
            operations += tasks.len();
            if kill {
                tokio::time::sleep(Duration::from_millis(rng.random_range(5..60))).await;
                world.binary.take().unwrap().kill();
                killed_at = Some(std::time::Instant::now());
            }
            for task in tasks {
                task.await.unwrap();
            }
            if world.binary.is_none() {
                world.start_binary().await;
            }
            let after = world.truth().await;
            let (start, end) = (before.counts(), after.counts());
            for (pool, count) in &end {
                if let Some(limit) = world.limits.of(pool) {
                    let was = start.get(pool).copied().unwrap_or(0);
                    assert!(
                        *count <= i64::from(limit).max(was),
                        "seed {seed}, phase {phase}: {pool:?} holds {count} under a limit of {limit} (was {was})"
                    );
                }
            }
        }
        let drift: i64 = rows(&world.apps[0], USAGE_DRIFT_SQL).await[0]
            .try_get_by_index(0)
            .unwrap();
        assert_eq!(
            drift, 0,
            "seed {seed}, phase {phase}: usage counts differ from the redemptions"
        );
        let overdrawn: i64 = rows(&world.apps[0], QUOTAS_OVER_LIMIT_SQL).await[0]
            .try_get_by_index(0)
            .unwrap();
        assert_eq!(
            overdrawn, 0,
            "seed {seed}, phase {phase}: a total's quotas exceed its limit"
        );
    }

    // Everything released, the ttl passed: each pool accepts exactly its limit.
    for order in world.truth().await.orders.keys() {
        world.replicas().release(0, order).await.unwrap();
    }
    tokio::time::sleep(TTL + Duration::from_millis(300)).await;
    for which in 0..8 {
        for other in 0..8 {
            world.set_limit(other, None).await;
        }
        let limit = rng.random_range(1..=6);
        world.set_limit(which, Some(limit)).await;
        let per_customer = which % 2 == 1;
        // A's pools need no code; B's and K0's take K0; K1's take K1.
        let k = match which {
            0 | 1 => None,
            2..=5 => Some(0),
            _ => Some(1),
        };
        let mut accepted = 0;
        let mut orders = Vec::new();
        for i in 0..limit + 2 {
            let c = if per_customer {
                "final".to_owned()
            } else {
                format!("final-{which}-{i}")
            };
            let order = world.fresh_order();
            let r = (i as usize) % 2;
            if let Some(o) = world.replicas().apply(r, &order, &c, k).await.unwrap() {
                let counted = if which < 2 { o.a } else { o.b.is_some() };
                accepted += i32::from(counted);
                orders.push(order);
            }
        }
        assert_eq!(
            accepted, limit,
            "seed {seed}: pool kind {which} accepts exactly its limit"
        );
        for order in orders {
            world.replicas().release(1, &order).await.unwrap();
        }
    }
    eprintln!("limits model: {operations} operations in {phases} phases, seed {seed}");
}

/// The three replicas (the last one the binary), as requests see them.
struct Replicas {
    endpoints: Vec<String>,
    client: reqwest::Client,
    ids: [Uuid; 2],
}

impl Replicas {
    /// Sends a document to replica `r`; None when no answer came (a killed
    /// replica) or the answer is UNAVAILABLE; any other error fails the test.
    async fn send(&self, r: usize, query: &str, variables: Value) -> Option<Value> {
        let response = self
            .client
            .post(&self.endpoints[r])
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .ok()?;
        let answer: Value = response.json().await.ok()?;
        match answer["errors"][0]["extensions"]["code"].as_str() {
            None => Some(answer),
            Some("UNAVAILABLE") => None,
            Some(_) => panic!("replica {r}: {answer:#}"),
        }
    }

    /// Applies on replica `r`: Some(Some(order)) counted, Some(None) nothing counted, None unknown.
    async fn apply(&self, r: usize, order: &str, customer: &str, k: Option<usize>) -> Option<Option<Order>> {
        let cart = json!({
            "currency": "EUR",
            "customer": { "id": customer },
            "couponCodes": k.map(|k| vec![CODES[k]]).unwrap_or_default(),
            "lines": [{ "id": "l", "productId": "p", "quantity": 1, "unitPrice": 10_000 }],
        });
        let answer = self
            .send(r, APPLY, json!({ "i": { "orderId": order, "cart": cart } }))
            .await?;
        let result = &answer["data"]["applyPromotions"];
        if result["redemption"].is_null() {
            return Some(None);
        }
        let applied = result["applied"].as_array().unwrap();
        let of = |id: Uuid| applied.iter().find(|a| a["promotionId"] == id.to_string());
        let b = of(self.ids[1]).map(|a| CODES.iter().position(|c| a["couponCode"] == *c).expect("a known code"));
        Some(Some(Order {
            customer: customer.to_owned(),
            a: of(self.ids[0]).is_some(),
            b,
        }))
    }

    async fn release(&self, r: usize, order: &str) -> Option<()> {
        self.send(
            r,
            "mutation($o: String!) { releaseRedemption(orderId: $o) { status } }",
            json!({ "o": order }),
        )
        .await
        .map(|_| ())
    }
}
