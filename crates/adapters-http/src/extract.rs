//! Request extractors that answer bad input with the API's error shape.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use crate::error::ApiError;

/// The JSON body size limit.
pub const BODY_LIMIT_BYTES: usize = 1024 * 1024;

/// Like `axum::Json`, but 415 without a JSON content type, 413 past the limit, 400 for
/// malformed JSON, and 400 naming the field (`attr`) for a value of the wrong type.
pub struct ApiJson<T>(pub T);

fn is_json(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|value| {
        let mime = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
    })
}

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        if !is_json(content_type) {
            return Err(ApiError::unsupported_media_type());
        }
        let bytes = Bytes::from_request(request, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::payload_too_large(BODY_LIMIT_BYTES)
            } else {
                ApiError::parse_error("The request body could not be read.")
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses a JSON body into `T`, mapping serde's errors to field-naming 400s that never
/// echo the submitted values (they may be secrets).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        match inner.classify() {
            Category::Syntax | Category::Eof | Category::Io => {
                ApiError::parse_error(format!("Malformed JSON at line {} column {}.", inner.line(), inner.column()))
            }
            Category::Data => describe_data_error(&path, &inner.to_string()),
        }
    })?;
    deserializer.end().map_err(|error| {
        ApiError::parse_error(format!("Malformed JSON: unexpected data after the value at line {}.", error.line()))
    })?;
    Ok(value)
}

fn describe_data_error(path: &str, message: &str) -> ApiError {
    if let Some(field) = message.strip_prefix("missing field `").and_then(|rest| rest.split('`').next()) {
        return ApiError::invalid_field(field, "This field is required.");
    }
    let expected = message.split(", expected ").nth(1).map(|e| e.split(" at line").next().unwrap_or(e));
    let detail = match expected {
        Some(expected) => format!("Invalid value: expected {expected}."),
        None => "Invalid value.".to_owned(),
    };
    if path == "." || path.is_empty() {
        ApiError::invalid_request(format!("The request body must be a JSON object. {detail}"))
    } else {
        ApiError::invalid_field(path, detail)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Body {
        name: Option<String>,
        enabled: Option<bool>,
    }

    #[test]
    fn content_types_with_json_are_accepted() {
        assert!(is_json(Some("application/json; charset=utf-8")));
        assert!(is_json(Some("application/merge-patch+json")));
        assert!(!is_json(Some("text/plain")));
        assert!(!is_json(None));
    }

    #[test]
    fn wrong_types_name_the_field_without_echoing_the_value() {
        let error = parse_json::<Body>(br#"{"enabled": "sk-secret-value"}"#).unwrap_err();
        let body = format!("{error:?}");
        assert!(body.contains("enabled"), "{body}");
        assert!(!body.contains("sk-secret-value"), "{body}");
        assert_eq!(error.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn malformed_json_is_a_parse_error() {
        let error = parse_json::<Body>(b"{\"name\": ").unwrap_err();
        assert!(format!("{error:?}").contains("parse_error"));
        let error = parse_json::<Body>(b"5").unwrap_err();
        assert!(format!("{error:?}").contains("JSON object"), "{error:?}");
    }
}
