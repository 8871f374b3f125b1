//! An identity provider's signing keys, from its JWKS URL (`JWT_JWKS_URL`),
//! chosen by a token's `kid`. The set is cached; a `kid` not in it fetches
//! the set again (a provider rotates by publishing the new key first), at
//! most once every [`MIN_REFRESH`] so unknown `kid`s cannot make the
//! service hammer the provider, and a set older than [`MAX_AGE`] is fetched
//! again on the next token (a withdrawn key stops being trusted). Keys are
//! bounded ([`MAX_KEYS`]), and so is each fetch (timeout, body size).

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey};

/// Shortest time between two fetches.
pub const MIN_REFRESH: Duration = Duration::from_secs(10);
/// Longest a fetched set is trusted without fetching it again.
pub const MAX_AGE: Duration = Duration::from_secs(15 * 60);
/// Most keys kept from one set.
const MAX_KEYS: usize = 64;
/// Longest a fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest key set accepted.
const MAX_BODY_BYTES: usize = 256 * 1024;

/// The cached key set of one URL.
pub struct Jwks {
    url: String,
    client: reqwest::Client,
    keys: RwLock<Keys>,
    /// One fetch at a time; the others wait for its keys.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Keys {
    by_kid: HashMap<String, (DecodingKey, Option<Algorithm>)>,
    /// The last fetch that succeeded (the keys' age).
    fetched_at: Option<Instant>,
    /// The last fetch tried, failed or not (the next may come [`MIN_REFRESH`] later).
    tried_at: Option<Instant>,
}

impl Jwks {
    /// The key set at `url` (http or https), not fetched yet.
    pub fn new(url: String) -> Result<Self, String> {
        let parsed = reqwest::Url::parse(&url).map_err(|e| format!("JWT_JWKS_URL {url:?} is not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("JWT_JWKS_URL {url:?} must be http or https"));
        }
        crate::telemetry::install_tls_provider();
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .build()
            .map_err(|e| format!("cannot build the JWKS client: {e}"))?;
        Ok(Self {
            url,
            client,
            keys: RwLock::default(),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    /// The key `kid` names, if the provider publishes it for `algorithm`
    /// (a key that declares another algorithm is not used for this one).
    pub async fn key(&self, kid: &str, algorithm: Algorithm) -> Option<DecodingKey> {
        let (found, stale) = self.cached(kid);
        let found = match found {
            Some(found) if !stale => Some(found),
            // An old set: fetched again by one token while the others go on
            // with the keys in hand.
            Some(found) if self.fetching.try_lock().is_err() => Some(found),
            _ => {
                self.refresh().await;
                self.cached(kid).0
            }
        };
        let (key, declared) = found?;
        declared.is_none_or(|declared| declared == algorithm).then_some(key)
    }

    fn cached(&self, kid: &str) -> (Option<(DecodingKey, Option<Algorithm>)>, bool) {
        let keys = self.keys.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let stale = keys.fetched_at.is_none_or(|at| at.elapsed() > MAX_AGE);
        (keys.by_kid.get(kid).cloned(), stale)
    }

    /// Fetches the set again unless it was fetched within [`MIN_REFRESH`];
    /// a failed fetch keeps the keys in hand.
    pub async fn refresh(&self) {
        let _one = self.fetching.lock().await;
        let recent = self
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .tried_at
            .is_some_and(|at| at.elapsed() < MIN_REFRESH);
        if recent {
            return;
        }
        let fetched = self.fetch().await;
        let mut keys = self.keys.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        // A failed fetch counts too: a provider outage is not retried per token.
        keys.tried_at = Some(Instant::now());
        match fetched {
            Ok(by_kid) => {
                tracing::info!(url = %self.url, keys = by_kid.len(), "JWKS fetched");
                keys.by_kid = by_kid;
                keys.fetched_at = keys.tried_at;
            }
            Err(e) => tracing::warn!(url = %self.url, error = %e, "JWKS fetch failed; keeping the keys in hand"),
        }
    }

    async fn fetch(&self) -> Result<HashMap<String, (DecodingKey, Option<Algorithm>)>, String> {
        let response = self
            .client
            .get(&self.url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| e.to_string())?;
        if response.content_length().is_some_and(|n| n > MAX_BODY_BYTES as u64) {
            return Err("the key set is too large".into());
        }
        let body = response.bytes().await.map_err(|e| e.to_string())?;
        if body.len() > MAX_BODY_BYTES {
            return Err("the key set is too large".into());
        }
        let set: JwkSet = serde_json::from_slice(&body).map_err(|e| format!("not a JWK set: {e}"))?;
        let mut by_kid = HashMap::new();
        for jwk in set.keys.iter().take(MAX_KEYS) {
            let Some(kid) = jwk.common.key_id.clone() else { continue };
            match DecodingKey::from_jwk(jwk) {
                Ok(key) => {
                    let declared = jwk.common.key_algorithm.and_then(|a| a.to_string().parse().ok());
                    by_kid.insert(kid, (key, declared));
                }
                Err(e) => tracing::debug!(kid, error = %e, "a JWK is not a usable key; skipped"),
            }
        }
        Ok(by_kid)
    }
}
