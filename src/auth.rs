//! Who may call what (DESIGN.md 7).
//!
//! Every GraphQL request (HTTP `Authorization: Bearer <jwt>`, WebSocket
//! `connection_init` payload `{"Authorization": "Bearer <jwt>"}`) and the
//! CSV export carries a JWT: HS256 signed with `JWT_SECRET`, or RS256 when a
//! public key is configured (`JWT_PUBLIC_KEY_FILE`). `exp` is required, `sub`
//! names the client (the rate limit counts per subject) and `role` is one of:
//!
//! - `admin`: everything;
//! - `checkout`: every query but `outboxEvents`, plus `applyPromotions` and
//!   `releaseRedemption`; no subscriptions;
//! - `viewer`: every query and the subscriptions.
//!
//! A missing, malformed, expired or foreign token is UNAUTHENTICATED; a
//! valid token whose role may not use a root field is FORBIDDEN ([`Allow`],
//! a guard on every root field).

use std::time::Duration;

use async_graphql::{Context, Guard};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::{AppError, AppResult};

/// A caller's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Checkout,
    Viewer,
}

/// Roles allowed on a root field.
pub type Roles = &'static [Role];
/// Every role: the queries checkout may use.
pub const ANY: Roles = &[Role::Admin, Role::Checkout, Role::Viewer];
/// Readers: `outboxEvents` and the subscriptions.
pub const READERS: Roles = &[Role::Admin, Role::Viewer];
/// The checkout's mutations.
pub const CHECKOUT: Roles = &[Role::Admin, Role::Checkout];
/// The admin API's mutations.
pub const ADMIN: Roles = &[Role::Admin];

/// The claims the service reads and `promotions token` writes.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    role: Role,
    exp: u64,
}

/// An authenticated caller, in each request's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's `sub`.
    pub subject: String,
    pub role: Role,
}

/// Checks tokens.
#[derive(Clone)]
pub struct Verifier {
    secret: DecodingKey,
    public_key: Option<DecodingKey>,
}

/// A HS256 key long enough to sign with.
fn check_secret(secret: &str) -> Result<(), String> {
    if secret.len() < 16 {
        return Err("JWT_SECRET must be at least 16 characters".into());
    }
    Ok(())
}

/// Most characters of a bearer token.
const MAX_TOKEN_CHARS: usize = 8_192;

impl Verifier {
    /// HS256 with `secret`; RS256 too with a PEM public key.
    pub fn new(secret: &str, public_key_pem: Option<&[u8]>) -> Result<Self, String> {
        check_secret(secret)?;
        let public_key = public_key_pem
            .map(|pem| {
                DecodingKey::from_rsa_pem(pem).map_err(|e| format!("JWT_PUBLIC_KEY_FILE is not an RSA public key: {e}"))
            })
            .transpose()?;
        Ok(Self {
            secret: DecodingKey::from_secret(secret.as_bytes()),
            public_key,
        })
    }

    /// The caller of an `Authorization` header value.
    pub fn verify(&self, authorization: Option<&str>) -> AppResult<Caller> {
        let refuse = |why: &str| AppError::Unauthenticated(why.to_owned());
        let header =
            authorization.ok_or_else(|| refuse("a bearer token is required (Authorization: Bearer <token>)"))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= MAX_TOKEN_CHARS)
            .ok_or_else(|| refuse("the Authorization header must be 'Bearer <token>'"))?;
        let algorithm = jsonwebtoken::decode_header(token)
            .map_err(|_| refuse("the bearer token is not a JWT"))?
            .alg;
        let key = match algorithm {
            Algorithm::HS256 => &self.secret,
            Algorithm::RS256 => self
                .public_key
                .as_ref()
                .ok_or_else(|| refuse("RS256 tokens are not accepted here"))?,
            _ => return Err(refuse("the token's algorithm is not accepted (HS256 or RS256)")),
        };
        let mut validation = Validation::new(algorithm);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.leeway = 5;
        let claims = jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => refuse("the token has expired"),
                jsonwebtoken::errors::ErrorKind::InvalidSignature => refuse("the token's signature is not valid"),
                _ => refuse("the token is not valid (it needs sub, exp and a role: admin, checkout or viewer)"),
            })?
            .claims;
        let subject = crate::domain::validation::identifier("sub", &claims.sub)
            .map_err(|_| refuse("the token's sub is not valid"))?;
        Ok(Caller {
            subject,
            role: claims.role,
        })
    }
}

/// A token for `role` and `subject`, valid for `ttl`, signed with `secret` (HS256).
pub fn issue(secret: &str, role: Role, subject: &str, ttl: Duration) -> Result<String, String> {
    check_secret(secret)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?;
    let claims = Claims {
        sub: subject.to_owned(),
        role,
        exp: (now + ttl).as_secs(),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|e| e.to_string())
}

/// The guard on a root field: the caller's role must be one of these.
pub struct Allow(pub Roles);

impl Guard for Allow {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        match ctx.data_opt::<Caller>() {
            None => Err(AppError::Unauthenticated("a bearer token is required".into()).into()),
            Some(caller) if self.0.contains(&caller.role) => Ok(()),
            Some(caller) => {
                Err(AppError::Forbidden(format!("the role {:?} may not use this field", caller.role)).into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "a-test-secret-of-32-characters!!";

    fn bearer(token: &str) -> String {
        format!("Bearer {token}")
    }

    #[test]
    fn an_issued_token_verifies_with_its_role_and_subject() {
        let verifier = Verifier::new(SECRET, None).unwrap();
        let token = issue(SECRET, Role::Checkout, "shop-1", Duration::from_secs(60)).unwrap();
        assert_eq!(
            verifier.verify(Some(&bearer(&token))).unwrap(),
            Caller {
                subject: "shop-1".into(),
                role: Role::Checkout
            }
        );
    }

    #[test]
    fn missing_malformed_foreign_and_expired_tokens_are_refused() {
        let verifier = Verifier::new(SECRET, None).unwrap();
        let foreign = issue(
            "another-secret-of-32-characters!",
            Role::Admin,
            "x",
            Duration::from_secs(60),
        )
        .unwrap();
        let expired = {
            let claims = Claims {
                sub: "x".into(),
                role: Role::Admin,
                exp: 1_000,
            };
            jsonwebtoken::encode(
                &Header::default(),
                &claims,
                &EncodingKey::from_secret(SECRET.as_bytes()),
            )
            .unwrap()
        };
        for (header, why) in [
            (None, "required"),
            (Some("Basic abc".to_owned()), "Bearer"),
            (Some(bearer("not-a-jwt")), "not a JWT"),
            (Some(bearer(&foreign)), "signature"),
            (Some(bearer(&expired)), "expired"),
        ] {
            let Err(AppError::Unauthenticated(refused)) = verifier.verify(header.as_deref()) else {
                panic!("{header:?} was not refused as unauthenticated");
            };
            assert!(refused.contains(why), "{header:?}: {refused}");
        }
    }

    #[test]
    fn a_short_secret_is_refused() {
        assert!(Verifier::new("short", None).is_err());
    }
}
