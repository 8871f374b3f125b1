//! Inputs and waiting: a valid promotion input, polling until a
//! condition holds, and seeded generators for randomized tests.

use super::*;

/// A valid CART promotion input: 10 % off everything; `extra` overrides fields.
pub fn promotion_input(extra: Value) -> Value {
    let mut input = json!({
        "name": "Ten percent",
        "scope": "CART",
        "action": { "percentageOff": { "basisPoints": 1000 } },
    });
    if let (Some(base), Some(extra)) = (input.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            base.insert(k.clone(), v.clone());
        }
    }
    input
}

/// Polls `check` every 20 ms until it holds; fails the test after `timeout`.
pub async fn until(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "not within {timeout:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A random generator seeded from the environment variable `var` when it
/// holds a number (to replay a failure), else at random; the seed is
/// printed, so that any failing run can be replayed.
pub fn seeded(var: &str) -> (u64, rand::rngs::StdRng) {
    use rand::SeedableRng;
    let seed: u64 = std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("{var}={seed}");
    (seed, rand::rngs::StdRng::seed_from_u64(seed))
}
