//! One error enum per provider-key use case. `field` names the request field at fault
//! (the HTTP layer's `attr`).

/// Creating a key failed.
#[derive(Debug, thiserror::Error)]
pub enum CreateProviderKeyError {
    /// The request itself is wrong (format, missing field, bad endpoint).
    #[error("{message}")]
    Invalid { field: &'static str, message: String },
    /// The provider did not accept the key; nothing was stored.
    #[error("{message}")]
    Rejected { field: &'static str, message: String },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Updating a key failed; nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum UpdateProviderKeyError {
    #[error("Not found.")]
    NotFound,
    #[error("{message}")]
    Invalid { field: &'static str, message: String },
    #[error("{message}")]
    Rejected { field: &'static str, message: String },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Re-validating a stored key failed.
#[derive(Debug, thiserror::Error)]
pub enum ValidateStoredKeyError {
    #[error("Not found.")]
    NotFound,
    #[error("No API key configured for this provider key.")]
    NoSecret,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Deleting a key failed; nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum DeleteProviderKeyError {
    #[error("Not found.")]
    NotFound,
    #[error("Replacement key not found")]
    ReplacementNotFound,
    #[error("Replacement key must be from the same provider")]
    ReplacementProviderMismatch,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Reading a key failed.
#[derive(Debug, thiserror::Error)]
pub enum GetProviderKeyError {
    #[error("Not found.")]
    NotFound,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Checking a key that is not stored (`provider_key_validations`) failed before any call.
#[derive(Debug, thiserror::Error)]
pub enum CheckKeyError {
    #[error("{message}")]
    Invalid { field: &'static str, message: String },
}

/// Re-sealing every secret under the current encryption key failed part-way; the
/// rows done so far stay done and a re-run continues.
#[derive(Debug, thiserror::Error)]
pub enum ResealError {
    #[error("provider key {id} could not be opened with any configured encryption key: {source}")]
    CannotOpen { id: crate::ProviderKeyId, source: crate::crypto::CipherError },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

from_repository_error!(
    CreateProviderKeyError,
    UpdateProviderKeyError,
    ValidateStoredKeyError,
    DeleteProviderKeyError,
    GetProviderKeyError,
    ResealError
);
