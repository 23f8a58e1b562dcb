//! The `LlmGateway` port: what the domain asks of LLM providers.

use async_trait::async_trait;

use crate::invalid::Rule;
use crate::provider_key::{CredentialField, KeyState, ProviderCredentials};

/// The verdict of a live key check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCheck {
    /// `Ok`, `Invalid` or `Error`; never `Unknown`.
    pub state: KeyState,
    /// The gateway's sentence for the user when not `Ok` (stored as the key's
    /// `error_message`); never echoes the provider's body or the key.
    pub message: Option<String>,
    /// The rule the input broke when the check was refused before any call (the
    /// answering adapter words it); `message` is then `None`.
    pub refused: Option<Rule>,
    /// Which input is at fault (Azure only: endpoint vs key); `None` otherwise.
    pub field: Option<CredentialField>,
}

impl KeyCheck {
    pub fn ok() -> Self {
        Self { state: KeyState::Ok, message: None, refused: None, field: None }
    }

    pub fn invalid(message: impl Into<String>, field: Option<CredentialField>) -> Self {
        Self { state: KeyState::Invalid, message: Some(message.into()), refused: None, field }
    }

    pub fn error(message: impl Into<String>, field: Option<CredentialField>) -> Self {
        Self { state: KeyState::Error, message: Some(message.into()), refused: None, field }
    }

    /// Invalid without a call: the input breaks `rule`.
    pub fn refused(rule: Rule, field: Option<CredentialField>) -> Self {
        Self { state: KeyState::Invalid, message: None, refused: Some(rule), field }
    }
}

/// A model that a provider lists for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedModel {
    /// The id as the provider's API expects it (Gemini without `models/`; Fireworks whole
    /// paths; Azure deployment names).
    pub id: String,
    /// Unix seconds when the provider says the model was created, if it says.
    pub created: Option<i64>,
}

/// Why a model list could not be fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelListError {
    #[error("the provider rejected the key")]
    KeyRejected,
    #[error("the provider could not be reached or answered unexpectedly: {0}")]
    Unavailable(String),
}

/// Calls to LLM providers: one implementation speaks every provider's wire format.
/// Implementations bound every call with a timeout, follow no redirects and send the key
/// only to the provider's configured host.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait LlmGateway: Send + Sync + 'static {
    /// Checks a key with the provider's cheapest authenticated call. Never fails: every
    /// outcome (including network trouble) is a `KeyCheck`.
    async fn check_key(&self, credentials: &ProviderCredentials) -> KeyCheck;

    /// The models the key may use, as the provider lists them.
    async fn list_models(&self, credentials: &ProviderCredentials) -> Result<Vec<ListedModel>, ModelListError>;
}

/// A project's trial credits: judge calls on the operator's LLM (spec section 9).
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait TrialCredits: Send + Sync + 'static {
    /// Takes one credit if any is left (atomically: never past the limit).
    async fn reserve(&self, project: crate::ProjectId) -> Result<bool, crate::RepositoryError>;

    /// Gives back a credit taken for a call whose result was not kept.
    async fn release(&self, project: crate::ProjectId) -> Result<(), crate::RepositoryError>;
}
