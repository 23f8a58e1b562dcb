//! The provider-key audit trail (spec section 1): every create, update, validation,
//! assignment and delete of a key, with its actor (null for the system, e.g. the runner
//! marking a rejected key invalid) and secret-free before/after values — a key appears
//! only as its mask. Written in the change's own transaction.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{ProviderKey, UserSummary};
use crate::{ProviderKeyId, UserId};

/// What happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAction {
    Created,
    Updated,
    Validated,
    Assigned,
    Deleted,
}

impl KeyAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Validated => "validated",
            Self::Assigned => "assigned",
            Self::Deleted => "deleted",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Created, Self::Updated, Self::Validated, Self::Assigned, Self::Deleted]
            .into_iter()
            .find(|a| a.as_str() == raw)
    }
}

/// Who changed a key and how (what changed is computed where the change is written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditNote {
    /// `None`: the system.
    pub actor: Option<UserId>,
    pub action: KeyAction,
}

impl AuditNote {
    pub fn by(actor: UserId, action: KeyAction) -> Self {
        Self { actor: Some(actor), action }
    }

    pub fn system(action: KeyAction) -> Self {
        Self { actor: None, action }
    }
}

/// One changed field.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldChange {
    pub field: String,
    pub before: Value,
    pub after: Value,
}

impl FieldChange {
    pub fn new(field: &str, before: Value, after: Value) -> Self {
        Self { field: field.to_owned(), before, after }
    }

    /// A value the action produced (nothing before it).
    pub fn outcome(field: &str, after: Value) -> Self {
        Self::new(field, Value::Null, after)
    }

    pub fn to_json(&self) -> Value {
        json!({"field": self.field, "before": self.before, "after": self.after})
    }
}

/// One entry to append to the trail, in the change's own transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct NewKeyActivity {
    pub project: crate::ProjectId,
    pub key: ProviderKeyId,
    /// The key's name at the time (the trail outlives the key).
    pub key_name: String,
    pub action: KeyAction,
    pub actor: Option<UserId>,
    pub changes: Vec<FieldChange>,
}

/// One entry of the trail as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyActivity {
    pub id: Uuid,
    pub key: ProviderKeyId,
    pub key_name: String,
    pub action: KeyAction,
    pub actor: Option<UserSummary>,
    pub created_at: DateTime<Utc>,
    pub changes: Vec<FieldChange>,
}

fn fields(key: &ProviderKey) -> [(&'static str, Value); 10] {
    let compatible = key.compatible.as_ref();
    [
        ("name", json!(key.name)),
        ("provider", json!(key.provider.as_str())),
        ("api_key", json!(key.api_key_masked)),
        ("state", json!(key.state.as_str())),
        ("error_message", json!(key.error_message)),
        ("azure_endpoint", json!(key.azure_endpoint)),
        ("api_version", json!(key.api_version)),
        ("base_url", json!(compatible.map(|c| &c.base_url))),
        ("extra_headers", json!(compatible.map(|c| &c.extra_headers).filter(|h| !h.is_empty()))),
        ("custom_models", json!(compatible.map(|c| &c.custom_models).filter(|m| !m.is_empty()))),
    ]
}

/// A new key's fields (nothing before).
pub fn created(key: &ProviderKey) -> Vec<FieldChange> {
    fields(key).into_iter().filter(|(_, v)| !v.is_null()).map(|(f, v)| FieldChange::outcome(f, v)).collect()
}

/// What differs between two states of a key (the secret as its mask only).
pub fn diff(before: &ProviderKey, after: &ProviderKey) -> Vec<FieldChange> {
    fields(before)
        .into_iter()
        .zip(fields(after))
        .filter(|((_, b), (_, a))| b != a)
        .map(|((field, b), (_, a))| FieldChange::new(field, b, a))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ProjectId;
    use crate::provider_key::KeyState;

    fn key() -> ProviderKey {
        ProviderKey {
            id: ProviderKeyId(Uuid::nil()),
            name: "Prod".into(),
            ..crate::provider_key::testing::stored_key(ProjectId(1))
        }
    }

    #[test]
    fn a_rotated_key_shows_masks_only_and_unchanged_fields_are_left_out() {
        let before = key();
        let after = ProviderKey { api_key_masked: "sk-n...6789".into(), name: "Prod 2".into(), ..key() };
        let changes = diff(&before, &after);
        assert_eq!(
            changes,
            vec![
                FieldChange::new("name", json!("Prod"), json!("Prod 2")),
                FieldChange::new("api_key", json!("sk-t...2345"), json!("sk-n...6789")),
            ]
        );
        let invalid = ProviderKey { state: KeyState::Invalid, error_message: Some("rejected".into()), ..key() };
        assert_eq!(diff(&before, &invalid).len(), 2);
        assert!(created(&before).iter().all(|c| c.before.is_null()));
        assert!(created(&before).iter().any(|c| c.field == "api_key" && c.after == json!("sk-t...2345")));
    }
}
