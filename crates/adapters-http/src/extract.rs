//! Request extractors that answer bad input with the API's error shape.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use crate::error::ApiError;
use crate::state::AppState;

/// The header by which agent tools (the reference's MCP server) name themselves.
const CLIENT_HEADER: &str = "x-posthog-client";

/// Whether the request comes from an agent tool (`X-PostHog-Client: mcp`): lists answer
/// it with the reference's slim items, so that they fit an agent's context budget.
pub fn from_agent_tool(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(CLIENT_HEADER)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim().eq_ignore_ascii_case("mcp"))
}

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

impl<T> FromRequest<AppState> for ApiJson<T>
where
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let content_type = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        if !is_json(content_type) {
            return Err(ApiError::unsupported_media_type());
        }
        // A body that trickles in would hold its connection (and its handler) for as long
        // as the client likes.
        let deadline = state.api_body_timeout;
        let bytes = tokio::time::timeout(deadline, Bytes::from_request(request, state))
            .await
            .map_err(|_| ApiError::body_timeout(deadline.as_secs()))?
            .map_err(|rejection| {
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
    refuse_nul(bytes)?;
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

/// The message of a NUL refused in a request (spec section 0, Values).
pub const NUL_MESSAGE: &str = "Text may not contain the NUL character (U+0000).";

/// 400 naming the field when a string (or key) of the JSON body holds U+0000, which
/// PostgreSQL cannot store. JSON can only carry it escaped, so bodies without `\u0000`
/// are not walked.
fn refuse_nul(bytes: &[u8]) -> Result<(), ApiError> {
    if !bytes.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000")) {
        return Ok(());
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Ok(()); // the typed parse reports the syntax error
    };
    match nul_path(&value, String::new()) {
        Some(path) if path.is_empty() => Err(ApiError::invalid_request(NUL_MESSAGE)),
        Some(path) => Err(ApiError::invalid_field(path, NUL_MESSAGE)),
        None => Ok(()),
    }
}

/// Where the first NUL is: `name`, `conditions[0].properties[1].value`, ...
fn nul_path(value: &serde_json::Value, path: String) -> Option<String> {
    match value {
        serde_json::Value::String(text) => text.contains('\0').then_some(path),
        serde_json::Value::Array(items) => {
            items.iter().enumerate().find_map(|(n, item)| nul_path(item, format!("{path}[{n}]")))
        }
        serde_json::Value::Object(map) => map.iter().find_map(|(key, item)| {
            let here = if path.is_empty() {
                key.replace('\0', "\u{FFFD}")
            } else {
                format!("{path}.{}", key.replace('\0', "\u{FFFD}"))
            };
            if key.contains('\0') { Some(here) } else { nul_path(item, here) }
        }),
        _ => None,
    }
}

/// 400 naming the parameter when a query string's name or value holds U+0000.
pub fn refuse_nul_in_query(query: Option<&str>) -> Result<(), ApiError> {
    let Some(query) = query.filter(|q| q.contains("%00") || q.contains('\0')) else {
        return Ok(());
    };
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if key.contains('\0') || value.contains('\0') {
            return Err(ApiError::invalid_field(key.replace('\0', "\u{FFFD}"), NUL_MESSAGE));
        }
    }
    Ok(())
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

/// `deserialize_with` for optional fields where `null` means something: tells a field
/// sent as `null` (`Some(None)`) from a field left out (`None`, with `#[serde(default)]`).
pub(crate) fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(deserializer).map(Some)
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
    fn a_nul_anywhere_in_the_body_is_a_400_naming_its_field() {
        let error = parse_json::<Body>(br#"{"name": "a\u0000b"}"#).unwrap_err();
        assert_eq!(error.status(), StatusCode::BAD_REQUEST);
        assert!(format!("{error:?}").contains("attr: Some(\"name\")"), "{error:?}");
        let nested = parse_json::<serde_json::Value>(br#"{"c": [{"p": [{"value": "x\u0000"}]}]}"#).unwrap_err();
        assert!(format!("{nested:?}").contains("c[0].p[0].value"), "{nested:?}");
        // An escaped backslash before `u0000` is text, not a NUL.
        assert!(parse_json::<Body>(br#"{"name": "a\\u0000b"}"#).is_ok());
        assert!(refuse_nul_in_query(Some("provider=open%00ai")).is_err());
        assert!(refuse_nul_in_query(Some("provider=openai")).is_ok());
    }

    #[test]
    fn malformed_json_is_a_parse_error() {
        let error = parse_json::<Body>(b"{\"name\": ").unwrap_err();
        assert!(format!("{error:?}").contains("parse_error"));
        let error = parse_json::<Body>(b"5").unwrap_err();
        assert!(format!("{error:?}").contains("JSON object"), "{error:?}");
    }
}
