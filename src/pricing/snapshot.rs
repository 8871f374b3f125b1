//! The in-memory snapshot of switched-on promotions, indexed by product,
//! category and brand (plus the untargeted ones), so that finding a cart's
//! candidates costs a few hash look-ups per line, whatever the number of
//! promotions. Built from PostgreSQL off the hot path, then swapped in whole.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::cart::Cart;
use crate::domain::engine::{CampaignState, Offer};
use crate::domain::promotion::Promotion;

/// Promotions and campaigns as of one load.
#[derive(Default)]
pub struct Snapshot {
    promotions: Vec<Promotion>,
    campaigns: HashMap<Uuid, CampaignState>,
    by_id: HashMap<Uuid, usize>,
    by_product: HashMap<String, Vec<usize>>,
    by_category: HashMap<String, Vec<usize>>,
    by_brand: HashMap<String, Vec<usize>>,
    untargeted: Vec<usize>,
    /// When it was loaded.
    pub loaded_at: Option<DateTime<Utc>>,
}

impl Snapshot {
    /// Indexes `promotions` (switched on, not over) and their `campaigns`.
    pub fn new(promotions: Vec<Promotion>, campaigns: HashMap<Uuid, CampaignState>, loaded_at: DateTime<Utc>) -> Self {
        let mut snapshot = Snapshot {
            campaigns,
            loaded_at: Some(loaded_at),
            ..Default::default()
        };
        for (i, p) in promotions.iter().enumerate() {
            snapshot.by_id.insert(p.id, i);
            let t = &p.definition.target;
            if !t.is_targeted() {
                snapshot.untargeted.push(i);
            }
            for (index, values) in [
                (&mut snapshot.by_product, &t.product_ids),
                (&mut snapshot.by_category, &t.category_ids),
                (&mut snapshot.by_brand, &t.brand_ids),
            ] {
                for value in values {
                    index.entry(value.clone()).or_default().push(i);
                }
            }
        }
        snapshot.promotions = promotions;
        snapshot
    }

    /// How many promotions it holds.
    pub fn len(&self) -> usize {
        self.promotions.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.promotions.is_empty()
    }

    fn offer_at(&self, i: usize) -> Offer<'_> {
        let promotion = &self.promotions[i];
        Offer {
            promotion,
            campaign: promotion.definition.campaign_id.and_then(|c| self.campaigns.get(&c)),
        }
    }

    /// Ids of the promotions with a usage limit (total or per customer).
    pub fn limited_promotions(&self) -> Vec<Uuid> {
        self.promotions
            .iter()
            .filter(|p| p.definition.total_usage_limit.is_some() || p.definition.usage_limit_per_customer.is_some())
            .map(|p| p.id)
            .collect()
    }

    /// A promotion by id, if switched on and not over.
    pub fn offer(&self, id: Uuid) -> Option<Offer<'_>> {
        self.by_id.get(&id).map(|i| self.offer_at(*i))
    }

    /// The promotions that could discount some line of `cart`: untargeted,
    /// or targeted at one of its products, categories or brands. The engine
    /// decides the rest (windows, exclusions, conditions).
    pub fn offers_for(&self, cart: &Cart) -> Vec<Offer<'_>> {
        let mut hits: Vec<usize> = self.untargeted.clone();
        for line in &cart.lines {
            if let Some(ids) = self.by_product.get(&line.product_id) {
                hits.extend(ids);
            }
            for category in &line.category_ids {
                if let Some(ids) = self.by_category.get(category) {
                    hits.extend(ids);
                }
            }
            if let Some(ids) = line.brand_id.as_ref().and_then(|b| self.by_brand.get(b)) {
                hits.extend(ids);
            }
        }
        hits.sort_unstable();
        hits.dedup();
        hits.into_iter().map(|i| self.offer_at(i)).collect()
    }
}
