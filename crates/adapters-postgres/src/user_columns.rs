//! The basic user object (`created_by`, an audit entry's actor) as the repositories read
//! it from a `LEFT JOIN users`.

use domain::UserId;
use domain::provider_key::UserSummary;
use sqlx::FromRow;
use uuid::Uuid;

/// The joined user's columns (`user_id`, `user_uuid`, `user_email`, `first_name`,
/// `last_name`); all null when there is no user.
#[derive(FromRow)]
pub(crate) struct UserColumns {
    user_id: Option<i64>,
    user_uuid: Option<Uuid>,
    user_email: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
}

impl UserColumns {
    pub(crate) fn summary(self) -> Option<UserSummary> {
        match (self.user_id, self.user_uuid, self.user_email) {
            (Some(id), Some(uuid), Some(email)) => Some(UserSummary {
                id: UserId(id),
                uuid,
                email,
                first_name: self.first_name.unwrap_or_default(),
                last_name: self.last_name.unwrap_or_default(),
            }),
            _ => None,
        }
    }
}
