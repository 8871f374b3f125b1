//! Use cases of the admin API: each takes a domain definition (the
//! resolver checked the client's draft into it, naming fields under its
//! argument), changes the stores in one transaction together with its
//! outbox event, and returns the stored aggregate. A coupon update is
//! checked here, against the stored coupon. Resolvers call exactly one of
//! these; no SQL lives in this layer.

pub mod campaigns;
pub mod coupon_batches;
pub mod coupons;
pub mod promotions;
