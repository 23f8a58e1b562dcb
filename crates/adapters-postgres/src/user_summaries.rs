//! Users as `created_by` shows them, remembered for a few seconds: the hot key read then
//! needs no join. A changed name or e-mail shows on every replica within the TTL.

use futures::FutureExt as _;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use domain::provider_key::UserSummary;
use domain::{RepositoryError, UserId};

use crate::read_connections::ReadConnections;
use crate::user_columns::UserColumns;

/// How long a user's summary is reused.
pub(crate) const USER_SUMMARY_TTL: Duration = Duration::from_secs(5);
/// Entries at most; past it the expired ones go, then all.
const CAPACITY: usize = 10_000;

pub(crate) struct UserSummaries {
    ttl: Duration,
    entries: Mutex<HashMap<UserId, (Instant, Option<UserSummary>)>>,
}

impl UserSummaries {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self { ttl, entries: Mutex::new(HashMap::new()) }
    }

    /// The user's summary (`None` when the user is gone), from memory or one read.
    pub(crate) async fn summary(
        &self,
        reads: &ReadConnections,
        user: UserId,
    ) -> Result<Option<UserSummary>, RepositoryError> {
        if let Some((stored, summary)) = self.lock().get(&user)
            && stored.elapsed() < self.ttl
        {
            return Ok(summary.clone());
        }
        let row: Option<UserColumns> = reads
            .read(move |connection| {
                sqlx::query_as(
                    "SELECT id AS user_id, uuid AS user_uuid, email AS user_email, first_name, last_name \
                     FROM users WHERE id = $1",
                )
                .bind(user.0)
                .fetch_optional(connection)
                .boxed()
            })
            .await?;
        let summary = row.and_then(UserColumns::summary);
        let mut entries = self.lock();
        if entries.len() >= CAPACITY {
            let ttl = self.ttl;
            entries.retain(|_, (stored, _)| stored.elapsed() < ttl);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(user, (Instant::now(), summary.clone()));
        Ok(summary)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, (Instant, Option<UserSummary>)>> {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
