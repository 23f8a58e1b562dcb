//! The provider-key audit trail in `provider_key_activity`: written on the caller's
//! connection (the change's own transaction), read newest first.

use chrono::{DateTime, Utc};
use domain::provider_key::{FieldChange, KeyAction, KeyActivity, NewKeyActivity};
use domain::{Page, PageRequest, ProjectId, ProviderKeyId, RepositoryError};
use serde_json::Value;
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

const INSERT: &str = "\
INSERT INTO provider_key_activity (id, project_id, provider_key_id, provider_key_name, action, actor, changes)
VALUES ($1, $2, $3, $4, $5, $6, $7)";

const LIST: &str = "\
SELECT a.id, a.provider_key_id, a.provider_key_name, a.action, a.changes, a.created_at,
       u.id AS user_id, u.uuid AS user_uuid, u.email AS user_email, u.first_name, u.last_name
FROM provider_key_activity a LEFT JOIN users u ON u.id = a.actor
WHERE a.project_id = $1 AND ($2::uuid IS NULL OR a.provider_key_id = $2)
ORDER BY a.created_at DESC, a.id DESC LIMIT $3 OFFSET $4";

const COUNT: &str = "\
SELECT count(*) FROM provider_key_activity a WHERE a.project_id = $1 AND ($2::uuid IS NULL OR a.provider_key_id = $2)";

/// Writes `entry` on `conn` (the caller's transaction).
pub(crate) async fn record(conn: &mut PgConnection, entry: &NewKeyActivity) -> Result<(), RepositoryError> {
    let changes = Value::Array(entry.changes.iter().map(FieldChange::to_json).collect());
    sqlx::query(INSERT)
        .bind(Uuid::now_v7())
        .bind(entry.project.0)
        .bind(entry.key.0)
        .bind(&entry.key_name)
        .bind(entry.action.as_str())
        .bind(entry.actor.map(|a| a.0))
        .bind(changes)
        .execute(conn)
        .await
        .map_err(RepositoryError::new)?;
    Ok(())
}

#[derive(FromRow)]
struct Row {
    id: Uuid,
    provider_key_id: Uuid,
    provider_key_name: String,
    action: String,
    changes: Value,
    created_at: DateTime<Utc>,
    #[sqlx(flatten)]
    user: crate::user_columns::UserColumns,
}

fn change(value: &Value) -> Option<FieldChange> {
    Some(FieldChange {
        field: value.get("field")?.as_str()?.to_owned(),
        before: value.get("before").cloned().unwrap_or(Value::Null),
        after: value.get("after").cloned().unwrap_or(Value::Null),
    })
}

/// A page of the trail.
pub(crate) async fn list(
    pool: &PgPool,
    project: ProjectId,
    key: Option<ProviderKeyId>,
    page: PageRequest,
) -> Result<Page<KeyActivity>, RepositoryError> {
    let rows: Vec<Row> = sqlx::query_as(LIST)
        .bind(project.0)
        .bind(key.map(|k| k.0))
        .bind(page.limit())
        .bind(page.offset())
        .fetch_all(pool)
        .await
        .map_err(RepositoryError::new)?;
    let total: i64 = sqlx::query_scalar(COUNT)
        .bind(project.0)
        .bind(key.map(|k| k.0))
        .fetch_one(pool)
        .await
        .map_err(RepositoryError::new)?;
    let items = rows
        .into_iter()
        .map(|row| {
            let action = KeyAction::parse(&row.action)
                .ok_or_else(|| RepositoryError::new(anyhow::anyhow!("activity {} has an invalid action", row.id)))?;
            let actor = row.user.summary();
            Ok(KeyActivity {
                id: row.id,
                key: ProviderKeyId(row.provider_key_id),
                key_name: row.provider_key_name,
                action,
                actor,
                created_at: row.created_at,
                changes: row.changes.as_array().map(|c| c.iter().filter_map(change).collect()).unwrap_or_default(),
            })
        })
        .collect::<Result<Vec<_>, RepositoryError>>()?;
    Ok(Page { items, total, request: page })
}
