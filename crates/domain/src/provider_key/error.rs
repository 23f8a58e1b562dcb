//! One error enum per provider-key use case; a refused value is a [`FieldError`].

use crate::invalid::FieldError;

/// Creating a key failed.
#[derive(Debug, thiserror::Error)]
pub enum CreateProviderKeyError {
    /// The request itself is wrong (format, missing field, bad endpoint), or the
    /// provider did not accept the key; nothing was stored.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Updating a key failed; nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum UpdateProviderKeyError {
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Re-validating a stored key failed.
#[derive(Debug, thiserror::Error)]
pub enum ValidateStoredKeyError {
    #[error("not found")]
    NotFound,
    #[error("no secret is stored for the key")]
    NoSecret,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Deleting a key failed; nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum DeleteProviderKeyError {
    #[error("not found")]
    NotFound,
    #[error("the replacement key is not in the project")]
    ReplacementNotFound,
    #[error("the replacement key is of another provider")]
    ReplacementProviderMismatch,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Reading a key failed.
#[derive(Debug, thiserror::Error)]
pub enum GetProviderKeyError {
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
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

use_case_errors!(
    CreateProviderKeyError: [Invalid, Unexpected],
    UpdateProviderKeyError: [NotFound, Invalid, Unexpected],
    ValidateStoredKeyError: [NotFound, Unexpected],
    DeleteProviderKeyError: [NotFound, Unexpected],
    GetProviderKeyError: [NotFound, Unexpected],
);
