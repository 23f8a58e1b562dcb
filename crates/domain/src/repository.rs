//! The error every repository port returns for failures that are not the caller's fault.

/// Storage failed (connection lost, constraint the domain did not foresee, ...). Mapped to a
/// 500 whose body says nothing about the cause; the cause is logged with the request id.
#[derive(Debug, thiserror::Error)]
#[error("storage failure: {0}")]
pub struct RepositoryError(#[from] pub anyhow::Error);

impl RepositoryError {
    /// Wraps any error as a storage failure.
    pub fn new(error: impl Into<anyhow::Error>) -> Self {
        Self(error.into())
    }
}
