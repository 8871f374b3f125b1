//! The in-memory snapshot of live promotions, indexed by product, category
//! and brand (plus the untargeted ones), so that finding a cart's
//! candidates costs a few hash look-ups per line, whatever the number of
//! promotions.
//!
//! Its maps are persistent ([`imbl`] B-trees, which hold 100,000 entries in
//! a quarter of the memory its hash tries take): a clone costs nothing and
//! shares everything, and a change copies only the nodes it touches. So a
//! change to one promotion makes a new version at the cost of that
//! promotion's index entries, while requests keep reading the version they
//! hold. The usage counts of the promotions it holds are those of their
//! last change: pricing reads live counts ([`crate::limits`]).

use std::collections::HashMap;
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
        let mut snapshot = Snapshot::default();
        for promotion in promotions {
            snapshot.upsert(promotion);
        }
        snapshot.set_campaigns(campaigns);
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

    /// The pricing version it reflects.
    pub fn version(&self) -> i64 {
        self.version
    }

    /// The ids of the promotions it holds.
    pub fn ids(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.promotions.keys().copied()
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

    /// Replaces every campaign's state.
    pub fn set_campaigns(&mut self, campaigns: HashMap<Uuid, CampaignState>) {
        self.campaigns = campaigns.into_iter().collect();
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
        [
            (&mut self.by_product, &target.product_ids),
            (&mut self.by_category, &target.category_ids),
            (&mut self.by_brand, &target.brand_ids),
        ]
    }
}

/// Whether two targets sit under the same index entries.
fn same_index_keys(a: &Target, b: &Target) -> bool {
    a.product_ids == b.product_ids && a.category_ids == b.category_ids && a.brand_ids == b.brand_ids
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
