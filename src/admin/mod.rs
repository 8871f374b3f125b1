//! Use cases of the admin API: each validates a draft into a domain
//! definition, changes the stores in one transaction together with its
//! outbox event, and returns the stored aggregate. Resolvers call exactly one
//! of these; no SQL lives above this layer.

pub mod campaigns;
pub mod coupon_batches;
pub mod coupons;
pub mod promotions;
