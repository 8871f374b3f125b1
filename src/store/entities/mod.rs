//! SeaORM entities: one module per table, plain rows. Decoding rows into
//! domain types (and rejecting rows that do not decode) is the job of the
//! repository modules beside this one.

pub mod campaign;
pub mod coupon;
pub mod coupon_batch;
pub mod outbox_event;
pub mod promotion;
pub mod promotion_target;
pub mod promotion_tier;
pub mod redemption;
