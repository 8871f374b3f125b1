//! Promotions, their target rows and their tiers.
//!
//! The definition is stored in typed columns, not JSON, so that every range
//! and shape rule is a database constraint. Targets are normalised rows
//! indexed by (kind, value): "promotions that can discount product X" is one
//! indexed query. `targeted` says whether any include row exists, so the
//! untargeted promotions come from a partial index.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            r#"
CREATE TABLE promotions (
    id                       uuid PRIMARY KEY,
    campaign_id              uuid REFERENCES campaigns (id),
    name                     text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    description              text CHECK (char_length(description) <= 2000),
    scope                    text NOT NULL CHECK (scope IN ('CATALOG', 'CART')),
    priority                 integer NOT NULL DEFAULT 0,
    stackable                boolean NOT NULL,
    stop_further_rules       boolean NOT NULL,
    requires_coupon          boolean NOT NULL,
    active                   boolean NOT NULL,
    starts_at                timestamptz,
    ends_at                  timestamptz,
    currency                 text CHECK (currency ~ '^[A-Z]{3}$'),
    total_usage_limit        integer CHECK (total_usage_limit > 0),
    usage_limit_per_customer integer CHECK (usage_limit_per_customer > 0),
    customer_segments        text[] NOT NULL DEFAULT '{}',
    targeted                 boolean NOT NULL,
    min_rating               double precision CHECK (min_rating BETWEEN 0 AND 5),
    -- conditions (each at most once; absent = NULL / false)
    min_subtotal             bigint CHECK (min_subtotal > 0),
    min_quantity             integer CHECK (min_quantity > 0),
    min_customer_reviews     integer CHECK (min_customer_reviews > 0),
    first_order_only         boolean NOT NULL DEFAULT false,
    days_of_week             smallint CHECK (days_of_week BETWEEN 1 AND 127),
    -- action
    action_kind              text NOT NULL CHECK (action_kind IN
                             ('PERCENTAGE_OFF', 'AMOUNT_OFF', 'FIXED_PRICE', 'BUY_X_GET_Y', 'TIERED', 'FREE_SHIPPING')),
    basis_points             integer CHECK (basis_points BETWEEN 1 AND 10000),
    amount                   bigint CHECK (amount > 0),
    per_item                 boolean,
    max_discount             bigint CHECK (max_discount > 0),
    buy_quantity             integer CHECK (buy_quantity > 0),
    get_quantity             integer CHECK (get_quantity > 0),
    max_applications         integer CHECK (max_applications > 0),
    has_get_target           boolean NOT NULL DEFAULT false,
    get_min_rating           double precision CHECK (get_min_rating BETWEEN 0 AND 5),
    tier_basis               text CHECK (tier_basis IN ('SUBTOTAL', 'QUANTITY')),
    -- usage, reconciled from redemptions (never updated on the checkout path)
    redemption_count         integer NOT NULL DEFAULT 0 CHECK (redemption_count >= 0),
    discount_total           bigint NOT NULL DEFAULT 0 CHECK (discount_total >= 0),
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT promotions_window_check CHECK (ends_at > starts_at),
    CONSTRAINT promotions_catalog_no_coupon_check CHECK (scope = 'CART' OR NOT requires_coupon),
    CONSTRAINT promotions_catalog_action_check CHECK (scope = 'CART'
        OR action_kind IN ('PERCENTAGE_OFF', 'FIXED_PRICE')
        OR (action_kind = 'AMOUNT_OFF' AND per_item)),
    CONSTRAINT promotions_action_shape_check CHECK (CASE action_kind
        WHEN 'PERCENTAGE_OFF' THEN basis_points IS NOT NULL
        WHEN 'AMOUNT_OFF' THEN amount IS NOT NULL AND per_item IS NOT NULL
        WHEN 'FIXED_PRICE' THEN amount IS NOT NULL
        WHEN 'BUY_X_GET_Y' THEN buy_quantity IS NOT NULL AND get_quantity IS NOT NULL AND basis_points IS NOT NULL
        WHEN 'TIERED' THEN tier_basis IS NOT NULL
        ELSE true END),
    CONSTRAINT promotions_currency_required_check CHECK (currency IS NOT NULL OR (
        action_kind NOT IN ('AMOUNT_OFF', 'FIXED_PRICE')
        AND max_discount IS NULL AND min_subtotal IS NULL
        AND (tier_basis IS NULL OR tier_basis = 'QUANTITY')))
);
CREATE INDEX promotions_campaign_idx ON promotions (campaign_id, id DESC);
CREATE INDEX promotions_untargeted_idx ON promotions (id DESC) WHERE NOT targeted;
CREATE INDEX promotions_active_window_idx ON promotions (starts_at, ends_at) WHERE active;

CREATE TABLE promotion_targets (
    promotion_id uuid NOT NULL REFERENCES promotions (id) ON DELETE CASCADE,
    kind         text NOT NULL CHECK (kind IN
                 ('PRODUCT', 'CATEGORY', 'BRAND', 'EXCLUDE_PRODUCT',
                  'GET_PRODUCT', 'GET_CATEGORY', 'GET_BRAND', 'GET_EXCLUDE_PRODUCT')),
    value        text NOT NULL CHECK (char_length(value) BETWEEN 1 AND 200),
    PRIMARY KEY (promotion_id, kind, value)
);
CREATE INDEX promotion_targets_lookup_idx ON promotion_targets (kind, value, promotion_id);

CREATE TABLE promotion_tiers (
    promotion_id     uuid NOT NULL REFERENCES promotions (id) ON DELETE CASCADE,
    threshold        bigint NOT NULL CHECK (threshold > 0),
    basis_points_off integer CHECK (basis_points_off BETWEEN 1 AND 10000),
    amount_off       bigint CHECK (amount_off > 0),
    PRIMARY KEY (promotion_id, threshold),
    CONSTRAINT promotion_tiers_one_discount_check
        CHECK ((basis_points_off IS NULL) <> (amount_off IS NULL))
);
"#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            "DROP TABLE promotion_tiers; DROP TABLE promotion_targets; DROP TABLE promotions;",
        )
        .await
    }
}
