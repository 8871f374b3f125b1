//! Batched look-ups for nested fields: a page of 500 coupons asking for
//! their promotion makes one query, not 500. The loaders keep no cache (every
//! request reads current rows); they only gather the keys that sibling
//! fields ask for at the same moment.

use std::collections::HashMap;
use std::time::Duration;

use async_graphql::dataloader::{DataLoader, Loader};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::domain::campaign::Campaign;
use crate::domain::promotion::Promotion;
use crate::store::coupon_batches::Batch;
use crate::store::{campaigns, coupon_batches, promotions};

/// How long a loader waits for more keys before it queries.
const GATHER: Duration = Duration::from_micros(100);

/// Campaigns by id.
pub struct Campaigns(DatabaseConnection);
/// Promotions by id.
pub struct Promotions(DatabaseConnection);
/// Coupon batches by id.
pub struct Batches(DatabaseConnection);

impl Loader<Uuid> for Campaigns {
    type Value = Campaign;
    type Error = async_graphql::Error;
    async fn load(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, Campaign>, Self::Error> {
        Ok(campaigns::find_many(&self.0, ids)
            .await?
            .into_iter()
            .map(|c| (c.id, c))
            .collect())
    }
}

impl Loader<Uuid> for Promotions {
    type Value = Promotion;
    type Error = async_graphql::Error;
    async fn load(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, Promotion>, Self::Error> {
        Ok(promotions::find_many(&self.0, ids)
            .await?
            .into_iter()
            .map(|p| (p.id, p))
            .collect())
    }
}

impl Loader<Uuid> for Batches {
    type Value = Batch;
    type Error = async_graphql::Error;
    async fn load(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, Batch>, Self::Error> {
        Ok(coupon_batches::find_many(&self.0, ids)
            .await?
            .into_iter()
            .map(|b| (b.id, b))
            .collect())
    }
}

/// The loaders, in the schema's data.
pub struct Loaders {
    pub campaigns: DataLoader<Campaigns>,
    pub promotions: DataLoader<Promotions>,
    pub batches: DataLoader<Batches>,
}

impl Loaders {
    /// Loaders reading through `db`.
    pub fn new(db: &DatabaseConnection) -> Self {
        Self {
            campaigns: DataLoader::new(Campaigns(db.clone()), spawn_in_span).delay(GATHER),
            promotions: DataLoader::new(Promotions(db.clone()), spawn_in_span).delay(GATHER),
            batches: DataLoader::new(Batches(db.clone()), spawn_in_span).delay(GATHER),
        }
    }
}

/// Runs a loader's batch on a task that keeps the span of the request
/// that started it (its SQL spans then belong to that request's trace).
fn spawn_in_span<F: Future<Output = ()> + Send + 'static>(batch: F) -> tokio::task::JoinHandle<()> {
    tokio::spawn(tracing::Instrument::in_current_span(batch))
}
