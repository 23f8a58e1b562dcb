//! The error every repository port returns for failures that are not the caller's fault.

/// Storage failed (connection lost, constraint the domain did not foresee, ...). Mapped to a
/// 500 whose body says nothing about the cause; the cause is logged with the request id.
#[derive(Debug, thiserror::Error)]
#[error("storage failure: {0}")]
pub struct RepositoryError(#[from] pub anyhow::Error);

/// Marks a failure after which the whole transaction may succeed when run again (the
/// adapter repaired what it met, e.g. created a missing partition).
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
struct Retryable(anyhow::Error);

impl RepositoryError {
    /// Wraps any error as a storage failure.
    pub fn new(error: impl Into<anyhow::Error>) -> Self {
        Self(error.into())
    }

    /// A failure after which running the whole transaction once more may succeed.
    pub fn retryable(error: impl Into<anyhow::Error>) -> Self {
        Self(anyhow::Error::new(Retryable(error.into())))
    }

    /// Whether running the failed transaction once more may succeed.
    pub fn is_retryable(&self) -> bool {
        self.0.is::<Retryable>()
    }
}
