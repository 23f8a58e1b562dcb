//! The one place where domain errors become HTTP answers. The kinds every use case shares
//! (not found, a refused value, a failed port) are answered once, by [`Failure`]; each
//! use case's particular failures are answered by its [`Answer`] impl.

use axum::http::StatusCode;
use domain::evaluation::{EnableRefusal, SaveEvaluationError, TrialEvaluationsError};
use domain::evaluation_config::SetActiveKeyError;
use domain::identity::AccessError;
use domain::ingestion::{IngestError, PayloadError};
use domain::judge::{ManualRunError, ResultsError};
use domain::models::ListModelsError;
use domain::offline_evaluation::ExperimentItemsError;
use domain::pagination::{MAX_LIMIT, PageRequestError};
use domain::provider_key::{DeleteProviderKeyError, ValidateStoredKeyError};
use domain::summary::SummarizeError;
use domain::{Failure, FieldError, RepositoryError, UseCaseError};

use crate::error::ApiError;
use crate::wording;

/// How a use case's particular failures are answered.
pub trait Answer: UseCaseError + Sized {
    /// Called for [`Failure::Particular`] only.
    fn particular(self) -> ApiError {
        unanswered(&self)
    }
}

impl<E: Answer> From<E> for ApiError {
    fn from(error: E) -> Self {
        match error.failure() {
            Failure::NotFound => ApiError::not_found(),
            Failure::Invalid(refused) => refused.into(),
            Failure::Unexpected(cause) => ApiError::internal(cause),
            Failure::Particular => error.particular(),
        }
    }
}

/// A variant classified as particular that its `Answer` does not answer: a bug, answered
/// as a 500 with the variant logged.
fn unanswered(error: &dyn std::error::Error) -> ApiError {
    ApiError::internal(&anyhow::anyhow!("a use-case failure without an answer: {error}"))
}

impl From<&FieldError> for ApiError {
    fn from(refused: &FieldError) -> Self {
        ApiError::invalid_field(refused.field.clone(), wording::rule(&refused.rule))
    }
}

impl From<FieldError> for ApiError {
    fn from(refused: FieldError) -> Self {
        (&refused).into()
    }
}

impl From<RepositoryError> for ApiError {
    fn from(error: RepositoryError) -> Self {
        Self::internal(&error.0)
    }
}

impl From<PageRequestError> for ApiError {
    fn from(error: PageRequestError) -> Self {
        let detail = match error {
            PageRequestError::NotANonNegativeInteger { field } => format!("{field} must be a non-negative integer."),
            PageRequestError::LimitOutOfRange => format!("limit must be between 1 and {MAX_LIMIT}."),
        };
        Self::invalid_field(error.field(), detail)
    }
}

impl Answer for AccessError {
    fn particular(self) -> ApiError {
        match self {
            AccessError::Unauthenticated(problem) => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "authentication_error",
                "not_authenticated",
                wording::credentials(problem),
            ),
            AccessError::MissingScope(scope) => forbidden(format!("API key missing required scope '{scope}'")),
            AccessError::NotAdmin => forbidden("You don't have sufficient permissions in the project."),
            AccessError::ProjectNotFound => ApiError::not_found(),
            other => unanswered(&other),
        }
    }
}

fn forbidden(detail: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "authentication_error", "permission_denied", detail)
}

impl Answer for domain::LookupError {}
impl Answer for domain::SaveError {}
impl Answer for domain::code::TestCodeError {
    fn particular(self) -> ApiError {
        match self {
            domain::code::TestCodeError::Unavailable(unavailable) => {
                tracing::warn!(error = %unavailable, "test_hog: the code could not be run");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "server_error",
                    "code_evaluator_unavailable",
                    "The server could not run the code just now; try again.",
                )
                .retry_after(1)
            }
            other => unanswered(&other),
        }
    }
}

impl Answer for ValidateStoredKeyError {
    fn particular(self) -> ApiError {
        match self {
            ValidateStoredKeyError::NoSecret => ApiError::invalid_field("api_key", wording::NO_STORED_SECRET),
            other => unanswered(&other),
        }
    }
}

impl Answer for DeleteProviderKeyError {
    fn particular(self) -> ApiError {
        let detail = match self {
            DeleteProviderKeyError::ReplacementNotFound => "Replacement key not found",
            DeleteProviderKeyError::ReplacementProviderMismatch => "Replacement key must be from the same provider",
            other => return unanswered(&other),
        };
        ApiError::invalid_field("replacement_key_id", detail)
    }
}

impl Answer for ListModelsError {
    fn particular(self) -> ApiError {
        match self {
            ListModelsError::MissingProvider => ApiError::invalid_field("provider", "provider query param is required"),
            ListModelsError::InvalidProvider(_) => ApiError::invalid_field("provider", wording::unknown_provider()),
            ListModelsError::ProviderMismatch { key, requested } => ApiError::invalid_field(
                "key_id",
                format!("Key provider '{key}' does not match requested provider '{requested}'"),
            ),
            ListModelsError::KeyNotFound => ApiError::not_found_with("Key not found"),
            other => unanswered(&other),
        }
    }
}

impl Answer for SaveEvaluationError {
    fn particular(self) -> ApiError {
        match self {
            SaveEvaluationError::EnableRefused(refusal) => enable_refused(refusal),
            other => unanswered(&other),
        }
    }
}

/// The reference's sentences for an evaluation that may not be enabled yet.
fn enable_refused(refusal: EnableRefusal) -> ApiError {
    let detail = match refusal {
        EnableRefusal::TrialLimitReached => {
            "Trial evaluation limit reached. Add a provider API key to re-enable this evaluation."
        }
        EnableRefusal::ProviderKeyMissing => {
            "The provider API key for this evaluation was deleted. Attach a provider API key before re-enabling."
        }
    };
    ApiError::invalid_field("enabled", detail)
}

impl Answer for TrialEvaluationsError {
    fn particular(self) -> ApiError {
        match self {
            TrialEvaluationsError::MissingProvider => {
                ApiError::invalid_field("provider", "provider query parameter is required")
            }
            TrialEvaluationsError::UnsupportedProvider(given) => {
                ApiError::invalid_field("provider", format!("Unsupported provider: {given}"))
            }
            other => unanswered(&other),
        }
    }
}

impl Answer for SetActiveKeyError {
    fn particular(self) -> ApiError {
        match self {
            SetActiveKeyError::MissingKeyId => ApiError::required_field("key_id", "key_id is required"),
            SetActiveKeyError::KeyNotFound => ApiError::not_found_with("Key not found").with_attr("key_id"),
            SetActiveKeyError::KeyNotUsable(state) => ApiError::invalid_field(
                "key_id",
                format!("Cannot activate key with state '{}'. Please validate the key first.", state.as_str()),
            ),
            other => unanswered(&other),
        }
    }
}

impl Answer for IngestError {
    fn particular(self) -> ApiError {
        match self {
            IngestError::Unauthenticated(problem) => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "authentication_error",
                "not_authenticated",
                wording::token(problem),
            ),
            IngestError::Malformed(error) => {
                let detail = wording::payload(&error);
                match error {
                    PayloadError::Json { .. } => ApiError::parse_error(detail),
                    PayloadError::Invalid { attr: Some(attr), .. } => ApiError::invalid_field(attr, detail),
                    PayloadError::Invalid { attr: None, .. } => ApiError::invalid_request(detail),
                }
            }
            other => unanswered(&other),
        }
    }
}

impl Answer for ExperimentItemsError {
    fn particular(self) -> ApiError {
        match self {
            ExperimentItemsError::Unexpected(cause) => {
                tracing::error!(error = %format!("{cause:#}"), "offline evaluation items query failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "error",
                    "Failed to fetch offline evaluation items",
                )
                .in_error_shape()
            }
        }
    }
}

impl Answer for ManualRunError {
    fn particular(self) -> ApiError {
        let detail = match self {
            ManualRunError::EvaluationNotFound(id) => format!("Evaluation {id} not found"),
            ManualRunError::EventNotFound(id) => format!("Event {id} not found"),
            ManualRunError::PastRetention(id) => {
                format!("Event {id} is past the ai_events retention window and can no longer be evaluated")
            }
            other => return unanswered(&other),
        };
        ApiError::not_found_with(detail).in_error_shape()
    }
}

impl Answer for ResultsError {
    fn particular(self) -> ApiError {
        match self {
            ResultsError::EvaluationNotFound => ApiError::not_found_with("Evaluation not found."),
            other => unanswered(&other),
        }
    }
}

impl Answer for SummarizeError {
    fn particular(self) -> ApiError {
        match self {
            SummarizeError::Throttled { retry_after } => {
                // Whole seconds, rounded up, so a client retrying then is let through.
                let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                let seconds = seconds.max(1);
                ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "throttled_error",
                    "throttled",
                    format!("Request was throttled. Expected available in {seconds} seconds."),
                )
                .retry_after(seconds)
            }
            SummarizeError::EvaluationNotFound(id) => {
                ApiError::not_found_with(format!("Evaluation {id} not found")).in_error_shape()
            }
            SummarizeError::NoRuns => {
                ApiError::invalid_request("No evaluation runs found for the specified criteria").in_error_shape()
            }
            SummarizeError::NoLlm => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "llm_not_configured",
                "No LLM is configured for summaries: add a provider key to this project and set it as the active \
                 key, or have the operator set LLMA_SYSTEM_LLM_PROVIDER and LLMA_SYSTEM_LLM_API_KEY.",
            )
            .in_error_shape(),
            SummarizeError::LlmFailed => {
                ApiError::new(StatusCode::BAD_GATEWAY, "server_error", "llm_failed", "Failed to generate summary")
                    .in_error_shape()
            }
            other => unanswered(&other),
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::response::IntoResponse as _;

    use super::*;

    #[tokio::test]
    async fn code_that_could_not_be_run_is_a_503_to_retry_not_a_500() {
        let unavailable = domain::code::CodeUnavailable("no thread to run it on".into());
        let answer = ApiError::from(domain::code::TestCodeError::Unavailable(unavailable)).into_response();
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(answer.headers()["retry-after"], "1");
        let body = axum::body::to_bytes(answer.into_body(), 4096).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["code"], "code_evaluator_unavailable");
        assert!(!body.to_string().contains("no thread"), "the cause is for the log: {body}");
    }
}
