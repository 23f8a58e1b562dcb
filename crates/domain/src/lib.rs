//! The llm-analytics domain: entities, validated value types, ports (traits that adapters
//! implement) and the use-case services that the HTTP adapter and the server call.
//!
//! Nothing here performs I/O; every outside effect goes through a port.

/// `From<RepositoryError>` for use-case errors whose `Unexpected` variant holds the cause.
macro_rules! from_repository_error {
    ($($error:ty),*) => {$(
        impl From<crate::RepositoryError> for $error {
            fn from(error: crate::RepositoryError) -> Self {
                Self::Unexpected(error.0)
            }
        }
    )*};
}

#[macro_use]
mod failure;

pub mod backfill;
pub mod code;
pub mod cost;
pub mod crypto;
pub mod evaluation;
pub mod evaluation_config;
pub mod housekeeping;
pub mod identity;
pub mod ids;
pub mod ingestion;
pub mod invalid;
pub mod jobs;
pub mod judge;
pub mod llm;
pub mod models;
pub mod offline_evaluation;
pub mod otel;
pub mod pagination;
pub mod provider_key;
pub mod reports;
pub mod repository;
pub mod summary;
pub mod unit_of_work;

pub use failure::{Failure, LookupError, SaveError, UseCaseError};
pub use ids::{
    ApiKeyId, BackfillId, EvaluationId, ModelConfigurationId, ProjectId, ProviderKeyId, ReportId, ReportRunId, UserId,
};
pub use invalid::{FieldError, Rule};
pub use pagination::{Page, PageRequest};
pub use repository::RepositoryError;
