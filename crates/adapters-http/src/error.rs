//! Every error the API returns, and the one place where domain errors become HTTP.
//!
//! Body: `{"type","code","detail","attr"}`; 5xx bodies never carry internals — the cause
//! is logged inside the request's span (which carries the `x-request-id`).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::RepositoryError;
use domain::evaluation::{
    AssignKeyError, CreateEvaluationError, DependentConfigsError, EnableRefusal, GetEvaluationError,
    TrialEvaluationsError, UpdateEvaluationError,
};
use domain::evaluation_config::SetActiveKeyError;
use domain::identity::AccessError;
use domain::ingestion::{IngestError, PayloadError};
use domain::judge::{ManualRunError, ResultsError};
use domain::models::ListModelsError;
use domain::offline_evaluation::ExperimentItemsError;
use domain::pagination::PageRequestError;
use domain::provider_key::{
    CheckKeyError, CreateProviderKeyError, DeleteProviderKeyError, GetProviderKeyError, UpdateProviderKeyError,
    ValidateStoredKeyError,
};
use domain::summary::SummarizeError;
use serde::Serialize;

/// The JSON error body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub code: &'static str,
    pub detail: String,
    pub attr: Option<String>,
}

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
    allow: Option<&'static str>,
    /// `Retry-After` seconds (429, 503).
    retry_after: Option<u64>,
    /// Answer `{"error": detail}` instead of the standard body: the reference's shape on
    /// the endpoints that the spec keeps it for (e.g. offline evaluations).
    error_shape: bool,
    /// Answer `{"error": {attr: [detail]}}`: the reference's validation shape on
    /// `evaluation_runs/`.
    field_error_shape: bool,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody { kind, code, detail: detail.into(), attr: None },
            allow: None,
            retry_after: None,
            error_shape: false,
            field_error_shape: false,
        }
    }

    fn with_attr(mut self, attr: impl Into<String>) -> Self {
        self.body.attr = Some(attr.into());
        self
    }

    /// 400 on one field.
    pub fn invalid_field(attr: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "validation_error", "invalid_input", detail).with_attr(attr)
    }

    /// 400 for a field that must be sent (DRF's `required` code).
    pub fn required_field(attr: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "validation_error", "required", detail).with_attr(attr)
    }

    /// 400 about the request as a whole.
    pub fn invalid_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "validation_error", "invalid_input", detail)
    }

    /// 400 for a body that is not JSON.
    pub fn parse_error(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", "parse_error", detail)
    }

    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_request",
            "unsupported_media_type",
            "Unsupported media type: send the body as JSON with `Content-Type: application/json`.",
        )
    }

    /// 415 with a sentence saying what to send.
    pub fn unsupported_media_type_with(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "invalid_request", "unsupported_media_type", detail)
    }

    pub fn payload_too_large(limit_bytes: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            "payload_too_large",
            format!("The request body is larger than the limit of {limit_bytes} bytes."),
        )
    }

    /// 503 with `Retry-After`: the capture lane's memory budget is taken (the SDKs retry).
    pub fn ingest_memory_busy(retry_after_secs: u64) -> Self {
        let mut error = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "ingest_memory_busy",
            "The server is holding as many event bodies as its memory budget allows; retry after `Retry-After` seconds.",
        );
        error.retry_after = Some(retry_after_secs);
        error
    }

    /// 408: the body did not arrive within the time allowed for it.
    pub fn body_timeout(seconds: u64) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "invalid_request",
            "request_timeout",
            format!("The request body did not arrive within {seconds} seconds."),
        )
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "invalid_request", "not_found", "Not found.")
    }

    /// 404 with a specific sentence (the reference's shape for some endpoints).
    pub fn not_found_with(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "invalid_request", "not_found", detail)
    }

    pub fn method_not_allowed(allow: &'static str) -> Self {
        let mut error = Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request",
            "method_not_allowed",
            "Method not allowed on this endpoint.",
        );
        error.allow = Some(allow);
        error
    }

    /// 405 for DELETE on a soft-deleted model (the reference's sentence).
    pub fn hard_delete_not_allowed() -> Self {
        let mut error = Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request",
            "method_not_allowed",
            "Hard delete of this model is not allowed. Use a patch API call to set \"deleted\" to true",
        );
        error.allow = Some("GET, PUT, PATCH");
        error
    }

    /// 500: logs the cause, answers nothing about it.
    pub fn internal(cause: &anyhow::Error) -> Self {
        tracing::error!(error = %format!("{cause:#}"), "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "error",
            "A server error occurred. Quote the x-request-id header when reporting it.",
        )
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The same error answered in the reference's `{"error": detail}` shape.
    pub fn in_error_shape(mut self) -> Self {
        self.error_shape = true;
        self
    }

    /// The same error answered as `{"error": {attr: [detail]}}` (or `{"error": detail}`
    /// when it names no field).
    pub fn in_field_error_shape(mut self) -> Self {
        self.field_error_shape = true;
        self
    }

    /// 413 for a compressed body that inflates past the limit.
    pub fn decompressed_too_large(limit_bytes: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            "payload_too_large",
            format!("The decompressed request body is larger than the limit of {limit_bytes} bytes."),
        )
    }

    /// 415 for a `Content-Encoding` other than gzip.
    pub fn unsupported_content_encoding(encoding: &str) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_request",
            "unsupported_media_type",
            format!("Unsupported Content-Encoding `{encoding}`: send the body as is or gzip-compressed."),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = if self.field_error_shape {
            let error = match &self.body.attr {
                Some(attr) => serde_json::json!({attr.as_str(): [self.body.detail]}),
                None => serde_json::json!(self.body.detail),
            };
            (self.status, Json(serde_json::json!({"error": error}))).into_response()
        } else if self.error_shape {
            (self.status, Json(serde_json::json!({"error": self.body.detail}))).into_response()
        } else {
            (self.status, Json(self.body)).into_response()
        };
        if let Some(allow) = self.allow {
            response.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<AccessError> for ApiError {
    fn from(error: AccessError) -> Self {
        match error {
            AccessError::Unauthenticated(detail) => {
                Self::new(StatusCode::UNAUTHORIZED, "authentication_error", "not_authenticated", detail)
            }
            AccessError::MissingScope(_) | AccessError::NotAdmin => {
                Self::new(StatusCode::FORBIDDEN, "authentication_error", "permission_denied", error.to_string())
            }
            AccessError::ProjectNotFound => Self::not_found(),
            AccessError::Unexpected(cause) => Self::internal(&cause),
        }
    }
}

impl From<RepositoryError> for ApiError {
    fn from(error: RepositoryError) -> Self {
        Self::internal(&error.0)
    }
}

impl From<PageRequestError> for ApiError {
    fn from(error: PageRequestError) -> Self {
        Self::invalid_field(error.field(), error.to_string())
    }
}

impl From<CreateProviderKeyError> for ApiError {
    fn from(error: CreateProviderKeyError) -> Self {
        match error {
            CreateProviderKeyError::Invalid { field, message }
            | CreateProviderKeyError::Rejected { field, message } => Self::invalid_field(field, message),
            CreateProviderKeyError::Unexpected(cause) => Self::internal(&cause),
        }
    }
}

impl From<UpdateProviderKeyError> for ApiError {
    fn from(error: UpdateProviderKeyError) -> Self {
        match error {
            UpdateProviderKeyError::NotFound => Self::not_found(),
            UpdateProviderKeyError::Invalid { field, message }
            | UpdateProviderKeyError::Rejected { field, message } => Self::invalid_field(field, message),
            UpdateProviderKeyError::Unexpected(cause) => Self::internal(&cause),
        }
    }
}

impl From<GetProviderKeyError> for ApiError {
    fn from(error: GetProviderKeyError) -> Self {
        match error {
            GetProviderKeyError::NotFound => Self::not_found(),
            GetProviderKeyError::Unexpected(cause) => Self::internal(&cause),
        }
    }
}

impl From<ValidateStoredKeyError> for ApiError {
    fn from(error: ValidateStoredKeyError) -> Self {
        match error {
            ValidateStoredKeyError::NotFound => Self::not_found(),
            ValidateStoredKeyError::NoSecret => Self::invalid_field("api_key", error.to_string()),
            ValidateStoredKeyError::Unexpected(cause) => Self::internal(&cause),
        }
    }
}

impl From<DeleteProviderKeyError> for ApiError {
    fn from(error: DeleteProviderKeyError) -> Self {
        match error {
            DeleteProviderKeyError::NotFound => Self::not_found(),
            DeleteProviderKeyError::ReplacementNotFound | DeleteProviderKeyError::ReplacementProviderMismatch => {
                Self::invalid_field("replacement_key_id", error.to_string())
            }
            DeleteProviderKeyError::Unexpected(cause) => Self::internal(&cause),
        }
    }
}

impl From<CheckKeyError> for ApiError {
    fn from(error: CheckKeyError) -> Self {
        match error {
            CheckKeyError::Invalid { field, message } => Self::invalid_field(field, message),
        }
    }
}

impl From<ListModelsError> for ApiError {
    fn from(error: ListModelsError) -> Self {
        match error {
            ListModelsError::MissingProvider | ListModelsError::InvalidProvider(_) => {
                Self::invalid_field("provider", error.to_string())
            }
            ListModelsError::ProviderMismatch { .. } => Self::invalid_field("key_id", error.to_string()),
            ListModelsError::KeyNotFound => Self::not_found_with(error.to_string()),
            ListModelsError::Unexpected(cause) => Self::internal(&cause),
        }
    }
}

impl From<CreateEvaluationError> for ApiError {
    fn from(error: CreateEvaluationError) -> Self {
        match error {
            CreateEvaluationError::Invalid { field, message } => Self::invalid_field(field, message),
            CreateEvaluationError::EnableRefused(refusal) => refusal.into(),
            CreateEvaluationError::Unexpected(cause) => Self::internal(&cause),
        }
    }
}

impl From<UpdateEvaluationError> for ApiError {
    fn from(error: UpdateEvaluationError) -> Self {
        match error {
            UpdateEvaluationError::NotFound => Self::not_found(),
            UpdateEvaluationError::Invalid { field, message } => Self::invalid_field(field, message),
            UpdateEvaluationError::EnableRefused(refusal) => refusal.into(),
            UpdateEvaluationError::Unexpected(cause) => Self::internal(&cause),
        }
    }
}

/// The reference's sentences for an evaluation that may not be enabled yet.
impl From<EnableRefusal> for ApiError {
    fn from(refusal: EnableRefusal) -> Self {
        let detail = match refusal {
            EnableRefusal::TrialLimitReached => {
                "Trial evaluation limit reached. Add a provider API key to re-enable this evaluation."
            }
            EnableRefusal::ProviderKeyMissing => {
                "The provider API key for this evaluation was deleted. Attach a provider API key before re-enabling."
            }
        };
        Self::invalid_field("enabled", detail)
    }
}

impl From<GetEvaluationError> for ApiError {
    fn from(error: GetEvaluationError) -> Self {
        match error {
            GetEvaluationError::NotFound => Self::not_found(),
            GetEvaluationError::Unexpected(cause) => Self::internal(&cause),
        }
    }
}

impl From<DependentConfigsError> for ApiError {
    fn from(error: DependentConfigsError) -> Self {
        match error {
            DependentConfigsError::NotFound => Self::not_found(),
            DependentConfigsError::Unexpected(cause) => Self::internal(&cause),
        }
    }
}

impl From<TrialEvaluationsError> for ApiError {
    fn from(error: TrialEvaluationsError) -> Self {
        match error {
            TrialEvaluationsError::MissingProvider | TrialEvaluationsError::UnsupportedProvider(_) => {
                Self::invalid_field("provider", error.to_string())
            }
            TrialEvaluationsError::Unexpected(cause) => Self::internal(&cause),
        }
    }
}

impl From<AssignKeyError> for ApiError {
    fn from(error: AssignKeyError) -> Self {
        match error {
            AssignKeyError::NotFound => Self::not_found(),
            AssignKeyError::MissingEvaluationIds => Self::invalid_field("evaluation_ids", error.to_string()),
            AssignKeyError::Invalid { field, message } => Self::invalid_field(field, message),
            AssignKeyError::Unexpected(cause) => Self::internal(&cause),
        }
    }
}

impl From<SetActiveKeyError> for ApiError {
    fn from(error: SetActiveKeyError) -> Self {
        match error {
            SetActiveKeyError::MissingKeyId => Self::required_field("key_id", error.to_string()),
            SetActiveKeyError::KeyNotFound => Self::not_found_with(error.to_string()).with_attr("key_id"),
            SetActiveKeyError::KeyNotUsable(state) => Self::invalid_field(
                "key_id",
                format!("Cannot activate key with state '{}'. Please validate the key first.", state.as_str()),
            ),
            SetActiveKeyError::Unexpected(cause) => Self::internal(&cause),
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(error: IngestError) -> Self {
        match error {
            IngestError::Unauthenticated(detail) => {
                Self::new(StatusCode::UNAUTHORIZED, "authentication_error", "not_authenticated", detail)
            }
            IngestError::Malformed(error @ PayloadError::Json { .. }) => Self::parse_error(error.to_string()),
            IngestError::Malformed(PayloadError::Invalid { attr: Some(attr), message }) => {
                Self::invalid_field(attr, message)
            }
            IngestError::Malformed(PayloadError::Invalid { attr: None, message }) => Self::invalid_request(message),
            IngestError::Unexpected(cause) => Self::internal(&cause),
        }
    }
}

impl From<ExperimentItemsError> for ApiError {
    fn from(error: ExperimentItemsError) -> Self {
        match error {
            ExperimentItemsError::Invalid { field, message } => Self::invalid_field(field, message),
            ExperimentItemsError::Unexpected(cause) => {
                tracing::error!(error = %format!("{cause:#}"), "offline evaluation items query failed");
                Self::new(
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

impl From<ManualRunError> for ApiError {
    fn from(error: ManualRunError) -> Self {
        match error {
            ManualRunError::Invalid { field, message } => Self::invalid_field(field, message).in_field_error_shape(),
            ManualRunError::EvaluationNotFound(_)
            | ManualRunError::EventNotFound(_)
            | ManualRunError::PastRetention(_) => Self::not_found_with(error.to_string()).in_error_shape(),
            ManualRunError::Unexpected(cause) => Self::internal(&cause.0),
        }
    }
}

impl From<ResultsError> for ApiError {
    fn from(error: ResultsError) -> Self {
        match error {
            ResultsError::Invalid { field, message } => Self::invalid_field(field, message),
            ResultsError::EvaluationNotFound => Self::not_found_with(error.to_string()),
            ResultsError::Unexpected(cause) => Self::internal(&cause.0),
        }
    }
}

impl From<SummarizeError> for ApiError {
    fn from(error: SummarizeError) -> Self {
        match error {
            SummarizeError::Throttled { retry_after } => {
                // Whole seconds, rounded up, so a client retrying then is let through.
                let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                let seconds = seconds.max(1);
                let mut error = Self::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "throttled_error",
                    "throttled",
                    format!("Request was throttled. Expected available in {seconds} seconds."),
                );
                error.retry_after = Some(seconds);
                error
            }
            SummarizeError::Invalid { field, message } => Self::invalid_field(field, message),
            SummarizeError::EvaluationNotFound(_) => Self::not_found_with(error.to_string()).in_error_shape(),
            SummarizeError::NoRuns => Self::invalid_request(error.to_string()).in_error_shape(),
            SummarizeError::NoLlm => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "server_error", "llm_not_configured", error.to_string())
                    .in_error_shape()
            }
            SummarizeError::LlmFailed => {
                Self::new(StatusCode::BAD_GATEWAY, "server_error", "llm_failed", error.to_string()).in_error_shape()
            }
            SummarizeError::Unexpected(cause) => Self::internal(&cause),
        }
    }
}

impl From<domain::reports::SaveReportError> for ApiError {
    fn from(error: domain::reports::SaveReportError) -> Self {
        use domain::reports::SaveReportError;
        match error {
            SaveReportError::NotFound => Self::not_found(),
            SaveReportError::Invalid(invalid) => Self::invalid_field(invalid.field, invalid.message),
            SaveReportError::Unexpected(cause) => Self::internal(&cause),
        }
    }
}

impl From<domain::reports::ReportError> for ApiError {
    fn from(error: domain::reports::ReportError) -> Self {
        use domain::reports::ReportError;
        match error {
            ReportError::NotFound => Self::not_found(),
            ReportError::Unexpected(cause) => Self::internal(&cause),
        }
    }
}
