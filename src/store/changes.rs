//! Change notifications on `promotions_changed`, which keep every replica's
//! pricing snapshot and coupon cache fresh.
//!
//! Promotions (with their targets and tiers) and campaigns announce
//! themselves from triggers (the migration `pricing_changes`) with the
//! pricing version of their transaction: `<version> promotion <id>`,
//! `<version> campaign <id>`, or `<version> all` after a TRUNCATE. Coupons
//! are announced by the code that changes them, without a version (a cached
//! coupon lives seconds): `coupon <CODE>`, or `coupons` for many.

use sea_orm::{ConnectionTrait, DbErr, Statement};
use uuid::Uuid;

/// The NOTIFY channel.
pub const CHANNEL: &str = "promotions_changed";

/// One notification, as its payload says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A promotion or campaign changed in the transaction that made this
    /// pricing version.
    Priced { version: i64, change: Priced },
    /// A coupon changed: forget its cached copy.
    Coupon(String),
    /// Many coupons changed: forget every cached coupon.
    Coupons,
}

/// What a pricing change touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priced {
    Promotion(Uuid),
    Campaign(Uuid),
    /// Everything (a table was truncated).
    All,
}

impl Notice {
    /// Reads a payload; None when it is not one this version sends.
    pub fn parse(payload: &str) -> Option<Notice> {
        let mut words = payload.split(' ');
        let first = words.next()?;
        let notice = match first {
            "coupons" => Notice::Coupons,
            "coupon" => Notice::Coupon(words.next()?.to_owned()),
            version => {
                let version = version.parse().ok()?;
                let change = match (words.next()?, words.next()) {
                    ("promotion", Some(id)) => Priced::Promotion(id.parse().ok()?),
                    ("campaign", Some(id)) => Priced::Campaign(id.parse().ok()?),
                    ("all", None) => Priced::All,
                    _ => return None,
                };
                Notice::Priced { version, change }
            }
        };
        words.next().is_none().then_some(notice)
    }
}

/// Announces coupon changes from inside the caller's transaction
/// (delivered on commit, never on rollback): one code, or all of them.
pub async fn notify_coupons(db: &impl ConnectionTrait, code: Option<&str>) -> Result<(), DbErr> {
    let payload = match code {
        Some(code) => format!("coupon {code}"),
        None => "coupons".to_owned(),
    };
    db.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        "SELECT pg_notify($1, $2)",
        [CHANNEL.into(), payload.into()],
    ))
    .await
    .map(|_| ())
}

/// The pricing version: how many transactions have changed a promotion or
/// campaign. One row, one read.
pub async fn version(db: &impl ConnectionTrait) -> Result<i64, DbErr> {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT version FROM pricing_version",
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("pricing_version has no row".to_owned()))?;
    row.try_get("", "version")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_parse_into_notices_and_anything_else_is_refused() {
        let id = Uuid::from_u128(7);
        assert_eq!(
            Notice::parse(&format!("12 promotion {id}")),
            Some(Notice::Priced {
                version: 12,
                change: Priced::Promotion(id)
            })
        );
        assert_eq!(
            Notice::parse(&format!("3 campaign {id}")),
            Some(Notice::Priced {
                version: 3,
                change: Priced::Campaign(id)
            })
        );
        assert_eq!(
            Notice::parse("4 all"),
            Some(Notice::Priced {
                version: 4,
                change: Priced::All
            })
        );
        assert_eq!(Notice::parse("coupon SAVE-10"), Some(Notice::Coupon("SAVE-10".into())));
        assert_eq!(Notice::parse("coupons"), Some(Notice::Coupons));
        for bad in [
            "",
            "promotions",
            "12 promotion",
            "12 promotion not-a-uuid",
            &format!("x promotion {id}"),
            &format!("12 promotion {id} more"),
            "4 all more",
            "coupon",
            "coupons more",
            &format!("12 coupon {id}"),
        ] {
            assert_eq!(Notice::parse(bad), None, "{bad:?}");
        }
    }
}
