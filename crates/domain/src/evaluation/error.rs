//! One error enum per evaluation use case; a refused value is a [`FieldError`] whose
//! `field` is its path, e.g. `model_configuration.provider_key_id`.

use crate::invalid::FieldError;

/// Why an evaluation may not be enabled now (spec section 4, enabling guards): enabling
/// it would only have the next judgement turn it off again for the same cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnableRefusal {
    /// It would run on trial credits, and the project's are used up.
    TrialLimitReached,
    /// It stopped because its key was deleted, and its model configuration still names none.
    ProviderKeyMissing,
}

/// Creating or updating (PUT/PATCH) an evaluation failed; nothing was stored or changed.
#[derive(Debug, thiserror::Error)]
pub enum SaveEvaluationError {
    /// The evaluation to update is not in the project.
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("the evaluation may not be enabled: {0:?}")]
    EnableRefused(EnableRefusal),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Reading an evaluation failed.
pub type GetEvaluationError = crate::LookupError;

/// Listing what depends on a provider key failed (the key is not in the project).
pub type DependentConfigsError = crate::LookupError;

/// Listing the evaluations on trial credits failed.
#[derive(Debug, thiserror::Error)]
pub enum TrialEvaluationsError {
    #[error("no provider was named")]
    MissingProvider,
    #[error("unsupported provider `{0}`")]
    UnsupportedProvider(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Assigning a key to evaluations failed (the key is not in the project); nothing changed.
pub type AssignKeyError = crate::LookupError;

from_repository_error!(SaveEvaluationError, TrialEvaluationsError);

use_case_errors!(
    SaveEvaluationError: [NotFound, Invalid, Unexpected],
    TrialEvaluationsError: [Unexpected],
);
