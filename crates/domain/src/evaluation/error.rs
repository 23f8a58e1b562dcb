//! One error enum per evaluation use case. `field` is the path of the request value at
//! fault (the HTTP layer's `attr`), e.g. `model_configuration.provider_key_id`.

/// Why an evaluation may not be enabled now (spec section 4, enabling guards): enabling
/// it would only have the next judgement turn it off again for the same cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnableRefusal {
    /// It would run on trial credits, and the project's are used up.
    TrialLimitReached,
    /// It stopped because its key was deleted, and its model configuration still names none.
    ProviderKeyMissing,
}

/// Creating an evaluation failed; nothing was stored.
#[derive(Debug, thiserror::Error)]
pub enum CreateEvaluationError {
    #[error("{message}")]
    Invalid { field: String, message: String },
    #[error("the evaluation cannot be enabled: {0:?}")]
    EnableRefused(EnableRefusal),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Updating (PUT/PATCH) an evaluation failed; nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum UpdateEvaluationError {
    #[error("Not found.")]
    NotFound,
    #[error("{message}")]
    Invalid { field: String, message: String },
    #[error("the evaluation cannot be enabled: {0:?}")]
    EnableRefused(EnableRefusal),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Reading an evaluation failed.
#[derive(Debug, thiserror::Error)]
pub enum GetEvaluationError {
    #[error("Not found.")]
    NotFound,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Listing what depends on a provider key failed.
#[derive(Debug, thiserror::Error)]
pub enum DependentConfigsError {
    /// The key is not in the project.
    #[error("Not found.")]
    NotFound,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Listing the evaluations on trial credits failed.
#[derive(Debug, thiserror::Error)]
pub enum TrialEvaluationsError {
    #[error("provider query parameter is required")]
    MissingProvider,
    #[error("Unsupported provider: {0}")]
    UnsupportedProvider(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Assigning a key to evaluations failed; nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum AssignKeyError {
    /// The key is not in the project.
    #[error("Not found.")]
    NotFound,
    #[error("evaluation_ids is required")]
    MissingEvaluationIds,
    #[error("{message}")]
    Invalid { field: String, message: String },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

from_repository_error!(
    CreateEvaluationError,
    UpdateEvaluationError,
    GetEvaluationError,
    DependentConfigsError,
    TrialEvaluationsError,
    AssignKeyError
);
