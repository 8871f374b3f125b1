//! How a worker waits for work: a PostgreSQL `LISTEN` on its channel, with
//! a polling fallback (and plain polling while the listener cannot connect).

/// A worker's wake-up: its channel's notifications, or the poll.
pub struct Wakeup {
    channel: &'static str,
    poll: std::time::Duration,
    listener: Option<sea_orm::sqlx::postgres::PgListener>,
}

impl Wakeup {
    /// Waits on NOTIFY `channel`, or `poll` at most.
    pub fn new(channel: &'static str, poll: std::time::Duration) -> Self {
        Self {
            channel,
            poll,
            listener: None,
        }
    }

    /// Returns on a notification or after the poll.
    pub async fn wait(&mut self, db: &sea_orm::DatabaseConnection) {
        if self.listener.is_none()
            && let Ok(mut l) =
                sea_orm::sqlx::postgres::PgListener::connect_with(db.get_postgres_connection_pool()).await
            && l.listen(self.channel).await.is_ok()
        {
            self.listener = Some(l);
        }
        match self.listener.as_mut() {
            Some(l) => {
                if let Ok(Err(_)) = tokio::time::timeout(self.poll, l.try_recv()).await {
                    // Listen anew on the next wait, after the poll's pause.
                    self.listener = None;
                    tokio::time::sleep(self.poll).await;
                }
            }
            None => tokio::time::sleep(self.poll).await,
        }
    }
}
