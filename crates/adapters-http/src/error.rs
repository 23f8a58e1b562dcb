//! Every error the API returns, and the one place where domain errors become HTTP.
//!
//! Body: `{"type","code","detail","attr"}`; 5xx bodies never carry internals — the cause
//! is logged inside the request's span (which carries the `x-request-id`).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::RepositoryError;
use domain::identity::AccessError;
use domain::models::ListModelsError;
use domain::pagination::PageRequestError;
use domain::provider_key::{
    CheckKeyError, CreateProviderKeyError, DeleteProviderKeyError, GetProviderKeyError, UpdateProviderKeyError,
    ValidateStoredKeyError,
};
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
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, code: &'static str, detail: impl Into<String>) -> Self {
        Self { status, body: ErrorBody { kind, code, detail: detail.into(), attr: None }, allow: None }
    }

    fn with_attr(mut self, attr: impl Into<String>) -> Self {
        self.body.attr = Some(attr.into());
        self
    }

    /// 400 on one field.
    pub fn invalid_field(attr: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "validation_error", "invalid_input", detail).with_attr(attr)
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

    pub fn payload_too_large(limit_bytes: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            "payload_too_large",
            format!("The request body is larger than the limit of {limit_bytes} bytes."),
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
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        if let Some(allow) = self.allow {
            response.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
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
