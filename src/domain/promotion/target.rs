//! Which cart lines a promotion may discount: [`Target`], and the raw
//! lists a client gives ([`TargetDraft`]).

use serde::Serialize;

use crate::domain::validation::{self as v, Invalid, path};

/// Which cart lines a promotion may discount (see the contract's `Target`).
/// Its lists are sets, sorted (the engine binary-searches them), boxed: a
/// snapshot holds one target per promotion, and a boxed slice is a third
/// smaller than a vector.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// Include lists: a line matches when all are empty or it is in any.
    pub product_ids: Box<[String]>,
    pub category_ids: Box<[String]>,
    pub brand_ids: Box<[String]>,
    /// Never eligible, whatever the include lists say.
    pub exclude_product_ids: Box<[String]>,
    /// Review-based: lines rated at least this (a line without rating is not eligible).
    pub min_rating: Option<f64>,
}

impl Target {
    /// Whether any include list is set (else every line is a candidate).
    pub fn is_targeted(&self) -> bool {
        !(self.product_ids.is_empty() && self.category_ids.is_empty() && self.brand_ids.is_empty())
    }
}

/// Raw target lists as given.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TargetDraft {
    pub product_ids: Vec<String>,
    pub category_ids: Vec<String>,
    pub brand_ids: Vec<String>,
    pub exclude_product_ids: Vec<String>,
    pub min_rating: Option<f64>,
}

impl TargetDraft {
    /// Validates the lists; they are sets, kept sorted so that a definition
    /// reads back exactly as it was stored.
    pub(super) fn validate(&self, field: &str) -> Result<Target, Invalid> {
        let set = |name: &str, values: &[String]| {
            v::identifiers(&path(field, name), values).map(|mut ids| {
                ids.sort();
                ids.into_boxed_slice()
            })
        };
        Ok(Target {
            product_ids: set("productIds", &self.product_ids)?,
            category_ids: set("categoryIds", &self.category_ids)?,
            brand_ids: set("brandIds", &self.brand_ids)?,
            exclude_product_ids: set("excludeProductIds", &self.exclude_product_ids)?,
            min_rating: self
                .min_rating
                .map(|r| v::rating(&path(field, "minRating"), r))
                .transpose()?,
        })
    }
}
