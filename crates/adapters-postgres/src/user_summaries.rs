//! Users as `created_by` shows them, remembered for a few seconds: the hot key read then
//! needs no join. A changed name or e-mail shows on every replica within the TTL.

use futures::FutureExt as _;
use std::time::Duration;

use domain::provider_key::UserSummary;
use domain::{RepositoryError, UserId};

use crate::memo::Memo;
use crate::read_connections::ReadConnections;
use crate::user_columns::UserColumns;

/// How long a user's summary is reused.
pub(crate) const USER_SUMMARY_TTL: Duration = Duration::from_secs(5);
pub(crate) struct UserSummaries {
    memo: Memo<UserId, Option<UserSummary>>,
}

impl UserSummaries {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self { memo: Memo::new(ttl) }
    }

    /// The user's summary (`None` when the user is gone), from memory or one read.
    pub(crate) async fn summary(
        &self,
        reads: &ReadConnections,
        user: UserId,
    ) -> Result<Option<UserSummary>, RepositoryError> {
        if let Some(summary) = self.memo.get(&user) {
            return Ok(summary);
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
        self.memo.put(user, summary.clone());
        Ok(summary)
    }
}
