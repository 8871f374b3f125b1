//! The pure domain: promotion definitions, campaigns, coupons and the rules
//! that make them valid. No IO here (no tokio, sea_orm, redis): every type is
//! built through a constructor that rejects invalid values with the offending
//! input field, so the rest of the service only ever holds valid definitions.

pub mod campaign;
pub mod cart;
pub mod code_pattern;
pub mod coupon;
pub mod engine;
pub mod money;
pub mod promotion;
pub mod usage;
pub mod validation;

pub use validation::Invalid;
