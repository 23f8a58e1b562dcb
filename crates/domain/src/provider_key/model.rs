//! The provider key entity and its value types.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Provider;
use crate::crypto::SealedSecret;
use crate::{ProjectId, ProviderKeyId, UserId};

/// A provider key's display name: trimmed, 1..=255 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyName(String);

impl KeyName {
    pub fn parse(raw: &str) -> Result<Self, crate::invalid::TextError> {
        let name = raw.trim();
        match name.chars().count() {
            0 => Err(crate::invalid::TextError::Blank),
            n if n > 255 => Err(crate::invalid::TextError::TooLong { max: 255 }),
            _ => Ok(Self(name.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What the last check of a key found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// Not checked since its configuration changed.
    Unknown,
    /// The provider accepted it.
    Ok,
    /// The provider rejected it (bad key, unknown endpoint).
    Invalid,
    /// The check could not conclude (rate limit, outage, no quota).
    Error,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Unknown => "unknown",
            KeyState::Ok => "ok",
            KeyState::Invalid => "invalid",
            KeyState::Error => "error",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "unknown" => Some(KeyState::Unknown),
            "ok" => Some(KeyState::Ok),
            "invalid" => Some(KeyState::Invalid),
            "error" => Some(KeyState::Error),
            _ => None,
        }
    }
}

/// The basic user object the API shows as `created_by`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSummary {
    pub id: UserId,
    pub uuid: uuid::Uuid,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
}

/// A stored provider key as read back: never holds the secret, only its mask.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderKey {
    pub id: ProviderKeyId,
    pub project: ProjectId,
    pub provider: Provider,
    pub name: String,
    pub state: KeyState,
    pub error_message: Option<String>,
    pub api_key_masked: String,
    pub azure_endpoint: Option<String>,
    pub api_version: Option<String>,
    /// Present exactly for `openai_compatible`.
    pub compatible: Option<super::CompatibleSettings>,
    pub created_by: Option<UserSummary>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A validated, sealed key ready to insert.
#[derive(Debug, Clone, PartialEq)]
pub struct NewProviderKeyRecord {
    pub id: ProviderKeyId,
    pub project: ProjectId,
    pub provider: Provider,
    pub name: KeyName,
    pub state: KeyState,
    pub error_message: Option<String>,
    pub api_key_masked: String,
    pub azure_endpoint: Option<String>,
    pub api_version: Option<String>,
    pub compatible: Option<super::CompatibleSettings>,
    pub sealed_secret: SealedSecret,
    pub created_by: UserId,
    /// Also make it the project's active key, in the same transaction.
    pub set_as_active: bool,
}

/// Column changes of one update, applied in one transaction. `None` leaves a column as is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProviderKeyChanges {
    pub name: Option<KeyName>,
    pub state: Option<KeyState>,
    /// `Some(None)` clears the message.
    pub error_message: Option<Option<String>>,
    pub api_key_masked: Option<String>,
    pub azure_endpoint: Option<String>,
    pub api_version: Option<String>,
    /// The endpoint's settings as a whole (only keys of an OpenAI-compatible endpoint).
    pub compatible: Option<super::CompatibleSettings>,
    pub sealed_secret: Option<SealedSecret>,
    pub set_as_active: bool,
    /// Who changed the key and how; recorded with the change (`None`: not audited, e.g.
    /// the key-rotation re-seal, which changes no visible field).
    pub audit: Option<super::AuditNote>,
}

impl ProviderKeyChanges {
    /// Whether nothing would change.
    pub fn is_empty(&self) -> bool {
        Self { audit: None, ..self.clone() } == Self::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_name_is_trimmed_and_bounded() {
        assert_eq!(KeyName::parse("  prod  ").unwrap().as_str(), "prod");
        assert_eq!(KeyName::parse("   "), Err(crate::invalid::TextError::Blank));
        assert_eq!(KeyName::parse(&"x".repeat(256)), Err(crate::invalid::TextError::TooLong { max: 255 }));
        assert!(KeyName::parse(&"é".repeat(255)).is_ok());
    }
}
