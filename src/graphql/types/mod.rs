//! GraphQL object, input and enum types, and their mapping to the domain.

pub mod campaign;
pub mod checkout;
pub mod common;
pub mod coupon;
pub mod outbox;
pub mod promotion;
