//! The in-memory snapshot of live promotions, indexed by product, category
//! and brand (plus the untargeted ones), so that finding a cart's
//! candidates costs a few look-ups per line, whatever the number of
//! promotions.
//!
//! Its maps are persistent ([`imbl`] B-trees, which hold 100,000 entries in
//! a quarter of the memory its hash tries take): a clone costs nothing and
//! shares everything, and a change copies only the nodes it touches. So a
//! change to one promotion makes a new version at the cost of that
//! promotion's index entries, while requests keep reading the version they
//! hold. A full load at start-up ([`FullLoad`]) builds each index once at
//! the end instead. The usage counts of the promotions it holds are
//! those of their last change: pricing reads live counts
//! ([`crate::limits`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use uuid::Uuid;

use crate::domain::cart::Cart;
use crate::domain::engine::{CampaignState, Offer};
use crate::domain::promotion::{Promotion, Target};

/// The ids of one index entry, sorted.
type Ids = Arc<[Uuid]>;
/// An index: a product, category or brand id to the promotions targeting it.
type Index = imbl::OrdMap<String, Ids>;

/// Live promotions and the campaigns they name, as of one pricing version.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    promotions: imbl::OrdMap<Uuid, Arc<Promotion>>,
    /// Every campaign that is not ENDED (an ENDED one's promotions are not
    /// live; a promotion naming an unknown campaign is never a candidate).
    campaigns: imbl::OrdMap<Uuid, CampaignState>,
    by_product: Index,
    by_category: Index,
    by_brand: Index,
    untargeted: Ids,
    /// Every pricing change up to this version is in
    /// ([`crate::store::changes`]).
    version: i64,
}

impl Snapshot {
    /// A snapshot of these promotions and campaigns, at version 0.
    pub fn new(promotions: impl IntoIterator<Item = Promotion>, campaigns: HashMap<Uuid, CampaignState>) -> Self {
        let mut load = FullLoad::over(&Snapshot::default());
        promotions.into_iter().for_each(|p| load.add(p));
        load.finish(campaigns, 0)
    }

    /// How many promotions it holds.
    pub fn len(&self) -> usize {
        self.promotions.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.promotions.is_empty()
    }

    /// The pricing version it reflects.
    pub fn version(&self) -> i64 {
        self.version
    }

    fn offer_of<'a>(&'a self, promotion: &'a Promotion) -> Offer<'a> {
        Offer {
            promotion,
            campaign: promotion.definition.campaign_id.and_then(|c| self.campaigns.get(&c)),
        }
    }

    /// A promotion by id, if live.
    pub fn offer(&self, id: Uuid) -> Option<Offer<'_>> {
        self.promotions.get(&id).map(|p| self.offer_of(p))
    }

    /// The promotions that could discount some line of `cart`: untargeted,
    /// or targeted at one of its products, categories or brands. The engine
    /// decides the rest (windows, exclusions, conditions).
    pub fn offers_for(&self, cart: &Cart) -> Vec<Offer<'_>> {
        let mut hits: Vec<Uuid> = self.untargeted.to_vec();
        for line in &cart.lines {
            let keys = [
                (&self.by_product, Some(&line.product_id)),
                (&self.by_brand, line.brand_id.as_ref()),
            ]
            .into_iter()
            .chain(line.category_ids.iter().map(|c| (&self.by_category, Some(c))));
            for (index, key) in keys {
                if let Some(ids) = key.and_then(|k| index.get(k.as_str())) {
                    hits.extend(ids.iter());
                }
            }
        }
        hits.sort_unstable();
        hits.dedup();
        hits.iter().filter_map(|id| self.offer(*id)).collect()
    }

    /// Puts `promotion` in, in place of its previous version if any; one
    /// equal to the one held is left as it is (shared with older versions).
    pub fn upsert(&mut self, promotion: Promotion) {
        let old = self.promotions.get(&promotion.id).cloned();
        if old.as_deref() == Some(&promotion) {
            return;
        }
        let retarget = old
            .as_deref()
            .is_none_or(|old| !same_index_keys(&old.definition.target, &promotion.definition.target));
        if retarget {
            if let Some(old) = &old {
                self.unindex(old);
            }
            self.index(&promotion);
        }
        self.promotions.insert(promotion.id, Arc::new(promotion));
    }

    /// Takes the promotion `id` out, if held.
    pub fn remove(&mut self, id: Uuid) {
        if let Some(old) = self.promotions.remove(&id) {
            self.unindex(&old);
        }
    }

    /// Sets a campaign's state; None: ENDED or gone.
    pub fn set_campaign(&mut self, id: Uuid, state: Option<CampaignState>) {
        match state {
            Some(state) => self.campaigns.insert(id, state),
            None => self.campaigns.remove(&id),
        };
    }

    /// Records that every change up to `version` is in.
    pub fn set_version(&mut self, version: i64) {
        self.version = version;
    }

    fn index(&mut self, promotion: &Promotion) {
        let id = promotion.id;
        let target = &promotion.definition.target;
        if !target.is_targeted() {
            self.untargeted = with(Some(&self.untargeted), id);
        }
        for (index, keys) in self.indexes_mut(target) {
            for key in keys {
                let ids = with(index.get(key.as_str()), id);
                index.insert(key.clone(), ids);
            }
        }
    }

    fn unindex(&mut self, promotion: &Promotion) {
        let id = promotion.id;
        let target = &promotion.definition.target;
        if !target.is_targeted() {
            self.untargeted = without(&self.untargeted, id).unwrap_or_default();
        }
        for (index, keys) in self.indexes_mut(target) {
            for key in keys {
                match index.get(key.as_str()).and_then(|ids| without(ids, id)) {
                    Some(ids) => index.insert(key.clone(), ids),
                    None => index.remove(key.as_str()),
                };
            }
        }
    }

    fn indexes_mut<'a>(&'a mut self, target: &'a Target) -> [(&'a mut Index, &'a [String]); 3] {
        let [products, categories, brands] = index_keys(target);
        [
            (&mut self.by_product, products),
            (&mut self.by_category, categories),
            (&mut self.by_brand, brands),
        ]
    }
}

/// The keys a target sits under in the product, category and brand
/// indexes, in that order.
fn index_keys(target: &Target) -> [&[String]; 3] {
    [&target.product_ids[..], &target.category_ids[..], &target.brand_ids[..]]
}

/// A snapshot built from every live promotion (a full load), two ways:
/// - over a version held (a reload): each promotion is put in with
///   [`Snapshot::upsert`], so an unchanged one costs a look-up and a
///   comparison and stays shared, index entries included; those not seen
///   are taken out at the end.
/// - from nothing (start-up): the indexes are gathered in hash maps and
///   made into B-trees once at the end, one tree insert per product,
///   category or brand instead of a look-up, copy and insert per promotion
///   and key.
pub enum FullLoad {
    Over {
        next: Snapshot,
        seen: HashSet<Uuid>,
    },
    Fresh {
        promotions: imbl::OrdMap<Uuid, Arc<Promotion>>,
        /// By product, category and brand (the order of [`index_keys`]).
        keys: [HashMap<String, Vec<Uuid>>; 3],
        untargeted: Vec<Uuid>,
    },
}

impl FullLoad {
    /// A load over `current` (fresh when it holds nothing).
    pub fn over(current: &Snapshot) -> Self {
        if current.is_empty() {
            FullLoad::Fresh {
                promotions: imbl::OrdMap::new(),
                keys: Default::default(),
                untargeted: Vec::new(),
            }
        } else {
            FullLoad::Over {
                next: current.clone(),
                seen: HashSet::with_capacity(current.len()),
            }
        }
    }

    /// Adds a live promotion (once each).
    pub fn add(&mut self, promotion: Promotion) {
        match self {
            FullLoad::Over { next, seen } => {
                seen.insert(promotion.id);
                next.upsert(promotion);
            }
            FullLoad::Fresh {
                promotions,
                keys,
                untargeted,
            } => {
                let id = promotion.id;
                let target = &promotion.definition.target;
                if !target.is_targeted() {
                    untargeted.push(id);
                }
                for (index, keys) in keys.iter_mut().zip(index_keys(target)) {
                    for key in keys {
                        match index.get_mut(key.as_str()) {
                            Some(ids) => ids.push(id),
                            None => {
                                index.insert(key.clone(), vec![id]);
                            }
                        }
                    }
                }
                promotions.insert(id, Arc::new(promotion));
            }
        }
    }

    /// The snapshot of what was added, with these campaigns, at `version`.
    pub fn finish(self, campaigns: HashMap<Uuid, CampaignState>, version: i64) -> Snapshot {
        let mut next = match self {
            FullLoad::Over { mut next, seen } => {
                let gone: Vec<Uuid> = next
                    .promotions
                    .keys()
                    .filter(|id| !seen.contains(id))
                    .copied()
                    .collect();
                gone.into_iter().for_each(|id| next.remove(id));
                next
            }
            FullLoad::Fresh {
                promotions,
                keys,
                untargeted,
            } => {
                let [by_product, by_category, by_brand] =
                    keys.map(|keys| keys.into_iter().map(|(key, ids)| (key, sorted(ids))).collect::<Index>());
                Snapshot {
                    promotions,
                    by_product,
                    by_category,
                    by_brand,
                    untargeted: sorted(untargeted),
                    ..Snapshot::default()
                }
            }
        };
        next.campaigns = campaigns.into_iter().collect();
        next.version = version;
        next
    }
}

/// `ids` as an index entry.
fn sorted(mut ids: Vec<Uuid>) -> Ids {
    ids.sort_unstable();
    ids.dedup();
    ids.into()
}

/// Whether two targets sit under the same index entries.
fn same_index_keys(a: &Target, b: &Target) -> bool {
    index_keys(a) == index_keys(b)
}

/// `ids` with `id` (kept sorted).
fn with(ids: Option<&Ids>, id: Uuid) -> Ids {
    let mut ids = ids.map(|ids| ids.to_vec()).unwrap_or_default();
    if let Err(at) = ids.binary_search(&id) {
        ids.insert(at, id);
    }
    ids.into()
}

/// `ids` without `id`; None when nothing is left.
fn without(ids: &Ids, id: Uuid) -> Option<Ids> {
    let left: Vec<Uuid> = ids.iter().copied().filter(|i| *i != id).collect();
    (!left.is_empty()).then(|| left.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::promotion::{ActionDraft, PromotionDefinition, PromotionDraft, Scope, TargetDraft};
    use chrono::{TimeZone, Utc};

    /// Promotion `i`, targeted at the products and categories given
    /// (untargeted when both are empty), discounting `basis_points`.
    fn promotion(i: u128, products: &[&str], categories: &[&str], basis_points: i32) -> Promotion {
        let strings = |values: &[&str]| values.iter().map(|v| v.to_string()).collect();
        let action = ActionDraft::PercentageOff {
            basis_points,
            max_discount: None,
        };
        let draft = PromotionDraft {
            target: TargetDraft {
                product_ids: strings(products),
                category_ids: strings(categories),
                ..Default::default()
            },
            ..PromotionDraft::new(format!("promotion {i}"), Scope::Cart, action)
        };
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        Promotion {
            id: Uuid::from_u128(i),
            definition: PromotionDefinition::new(&draft).expect("valid"),
            redemption_count: 0,
            discount_total: 0,
            created_at: at,
            updated_at: at,
        }
    }

    fn some() -> Vec<Promotion> {
        vec![
            promotion(3, &["a", "b"], &["shoes"], 100),
            promotion(1, &["a"], &[], 200),
            promotion(2, &[], &[], 300),
            promotion(5, &[], &["shoes", "hats"], 400),
            promotion(4, &[], &[], 500),
        ]
    }

    #[test]
    fn a_full_load_equals_the_same_promotions_put_in_one_by_one_in_any_order() {
        let mut one_by_one = Snapshot::default();
        for promotion in some().into_iter().rev() {
            one_by_one.upsert(promotion);
        }
        assert_eq!(Snapshot::new(some(), HashMap::new()), one_by_one);
        assert_eq!(one_by_one.by_product.get("a").map(|ids| ids.len()), Some(2));
        assert_eq!(
            one_by_one.untargeted.as_ref(),
            &[Uuid::from_u128(2), Uuid::from_u128(4)]
        );
    }

    #[test]
    fn a_reload_shares_what_did_not_change_and_drops_what_is_gone() {
        let current = Snapshot::new(some(), HashMap::new());
        let mut load = FullLoad::over(&current);
        // 1 is unchanged, 3 changed, 2, 4 and 5 are gone, 6 is new.
        load.add(promotion(1, &["a"], &[], 200));
        load.add(promotion(3, &["b"], &[], 150));
        load.add(promotion(6, &["c"], &[], 600));
        let next = load.finish(HashMap::new(), 7);
        let held = |s: &Snapshot, i: u128| s.promotions.get(&Uuid::from_u128(i)).cloned();
        assert!(Arc::ptr_eq(&held(&next, 1).unwrap(), &held(&current, 1).unwrap()));
        assert!(!Arc::ptr_eq(&held(&next, 3).unwrap(), &held(&current, 3).unwrap()));
        assert_eq!(next.len(), 3);
        assert_eq!(next.version(), 7);
        assert_eq!(next.by_product.get("a").unwrap().as_ref(), &[Uuid::from_u128(1)]);
        assert!(next.by_category.is_empty());
        assert!(next.untargeted.is_empty());
        let mut expected = Snapshot::new(
            [
                promotion(1, &["a"], &[], 200),
                promotion(3, &["b"], &[], 150),
                promotion(6, &["c"], &[], 600),
            ],
            HashMap::new(),
        );
        expected.set_version(7);
        assert_eq!(next, expected);
    }
}
