//! Demo data for local use: one ACTIVE campaign with a promotion of every
//! action type and a few coupons. Idempotent: it does nothing when the demo
//! coupon `DEMO15` already exists. Goes through the admin use cases, so the
//! data obeys every rule and each change has its outbox event.

use sea_orm::DatabaseConnection;

use crate::admin;
use crate::domain::campaign::{CampaignDefinition, CampaignDraft, CampaignStatus};
use crate::domain::coupon::{CouponDefinition, CouponDraft};
use crate::domain::promotion::{
    ActionDraft, ConditionDraft, PromotionDefinition, PromotionDraft, Scope, TierBasis, TierDraft,
};
use crate::error::AppResult;
use crate::store::coupons;

fn promotion(name: &str, scope: Scope, action: ActionDraft) -> PromotionDraft {
    PromotionDraft {
        currency: Some("EUR".to_owned()),
        ..PromotionDraft::new(name, scope, action)
    }
}

fn coupon(code: &str, usage_limit: Option<i32>) -> CouponDraft {
    CouponDraft {
        code: code.to_owned(),
        usage_limit,
        usage_limit_per_customer: Some(1),
        starts_at: None,
        expires_at: None,
    }
}

/// Seeds the demo data; returns whether anything was written.
pub async fn seed(db: &DatabaseConnection) -> AppResult<bool> {
    if coupons::find_by_code(db, "DEMO15").await?.is_some() {
        return Ok(false);
    }
    let campaign = admin::campaigns::create(
        db,
        &CampaignDefinition::new(&CampaignDraft {
            name: "Demo: Black Friday".to_owned(),
            description: Some("Every kind of promotion, for trying the API".to_owned()),
            starts_at: None,
            ends_at: None,
        })?,
    )
    .await?;
    admin::campaigns::set_status(db, campaign.id, CampaignStatus::Active).await?;
    let in_campaign = |mut d: PromotionDraft| {
        d.campaign_id = Some(campaign.id);
        PromotionDefinition::new(&d)
    };
    let ids = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();

    let mut shoes = promotion(
        "10% off shoes",
        Scope::Catalog,
        ActionDraft::PercentageOff {
            basis_points: 1000,
            max_discount: None,
        },
    );
    shoes.currency = None;
    shoes.target.category_ids = ids(&["shoes"]);
    admin::promotions::create(db, &in_campaign(shoes)?).await?;

    let mut socks = promotion(
        "Basic socks for 9.99",
        Scope::Cart,
        ActionDraft::FixedPrice { unit_price: 999 },
    );
    socks.target.product_ids = ids(&["sock-basic"]);
    admin::promotions::create(db, &in_campaign(socks)?).await?;

    let mut acme = promotion(
        "ACME: buy 2, get 1 free",
        Scope::Cart,
        ActionDraft::BuyXGetY {
            buy_quantity: 2,
            get_quantity: 1,
            basis_points_off: 10_000,
            max_applications: Some(3),
            get_target: None,
        },
    );
    acme.currency = None;
    acme.target.brand_ids = ids(&["acme"]);
    admin::promotions::create(db, &in_campaign(acme)?).await?;

    let tiered = promotion(
        "Spend more, save more",
        Scope::Cart,
        ActionDraft::Tiered {
            basis: TierBasis::Subtotal,
            tiers: vec![
                TierDraft {
                    threshold: 10_000,
                    basis_points_off: Some(500),
                    amount_off: None,
                },
                TierDraft {
                    threshold: 20_000,
                    basis_points_off: Some(1000),
                    amount_off: None,
                },
            ],
        },
    );
    admin::promotions::create(db, &in_campaign(tiered)?).await?;

    let mut shipping = promotion(
        "Free shipping from 50.00",
        Scope::Cart,
        ActionDraft::FreeShipping { max_discount: None },
    );
    shipping.conditions = vec![ConditionDraft::MinSubtotal(5_000)];
    admin::promotions::create(db, &in_campaign(shipping)?).await?;

    let mut five_off = promotion(
        "5.00 off from 50.00",
        Scope::Cart,
        ActionDraft::AmountOff {
            amount: 500,
            per_item: false,
        },
    );
    five_off.requires_coupon = true;
    five_off.conditions = vec![ConditionDraft::MinSubtotal(5_000)];
    let five_off = admin::promotions::create(db, &in_campaign(five_off)?).await?;
    admin::coupons::create(db, five_off.id, &CouponDefinition::new(&coupon("DEMO5", None))?).await?;

    let mut reviewed = promotion(
        "15% off well-reviewed items for reviewers",
        Scope::Cart,
        ActionDraft::PercentageOff {
            basis_points: 1500,
            max_discount: Some(3_000),
        },
    );
    reviewed.requires_coupon = true;
    reviewed.priority = 10;
    reviewed.total_usage_limit = Some(100);
    reviewed.usage_limit_per_customer = Some(1);
    reviewed.target.min_rating = Some(4.0);
    reviewed.conditions = vec![ConditionDraft::MinCustomerReviews(1)];
    let reviewed = admin::promotions::create(db, &in_campaign(reviewed)?).await?;
    admin::coupons::create(db, reviewed.id, &CouponDefinition::new(&coupon("DEMO15", Some(100)))?).await?;

    let mut vip = promotion(
        "VIP: 2.00 off every item",
        Scope::Cart,
        ActionDraft::AmountOff {
            amount: 200,
            per_item: true,
        },
    );
    vip.customer_segments = ids(&["vip"]);
    vip.stackable = false;
    vip.priority = 20;
    admin::promotions::create(db, &in_campaign(vip)?).await?;
    Ok(true)
}
