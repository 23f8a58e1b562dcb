//! One error per provider-key use case; a refused value is a [`crate::FieldError`].

/// Creating or updating a key failed; nothing was stored or changed. `Invalid` also
/// when the provider did not accept the key.
pub type SaveProviderKeyError = crate::SaveError;

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
pub type GetProviderKeyError = crate::LookupError;

/// Re-sealing every secret under the current encryption key failed part-way; the
/// rows done so far stay done and a re-run continues.
#[derive(Debug, thiserror::Error)]
pub enum ResealError {
    #[error("provider key {id} could not be opened with any configured encryption key: {source}")]
    CannotOpen { id: crate::ProviderKeyId, source: crate::crypto::CipherError },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

from_repository_error!(ValidateStoredKeyError, DeleteProviderKeyError, ResealError);

use_case_errors!(
    ValidateStoredKeyError: [NotFound, Unexpected],
    DeleteProviderKeyError: [NotFound, Unexpected],
);
