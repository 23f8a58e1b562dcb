//! Capture (spec section 5): `POST /batch/`, `/e/`, `/capture/`, `/i/v0/e/`, and the
//! Python SDK's AI lane `/i/v0/ai/batch/` **[beyond]**, each with and without the slash.
//!
//! The body may be gzip-compressed (`Content-Encoding: gzip`, `?compression=gzip-js` as
//! posthog-js sends it, or simply gzip bytes). It is read up to
//! [`CAPTURE_BODY_LIMIT_BYTES`] and inflated up to the same limit, never further: a small
//! gzip bomb is a 413, not an out-of-memory. Authentication is the project's public token
//! in the body, not a bearer.

use std::io::Read;

use axum::Json;
use axum::extract::{OriginalUri, Request, State};
use axum::http::{HeaderValue, header};
use chrono::Utc;
use domain::ingestion::IngestionService;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::ingest_budget::{HELD_PER_BODY_BYTE, Reservation};
use crate::state::AppState;

/// The largest capture body, compressed or decompressed.
pub const CAPTURE_BODY_LIMIT_BYTES: usize = 20 * 1024 * 1024;

/// The answer once the batch is durably stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaptureResponse {
    /// Always 1.
    pub status: u8,
}

/// One event as the analytics SDKs send it (documentation of the accepted payload).
#[derive(Debug, Serialize, ToSchema)]
pub struct CaptureEventDoc {
    /// The event name; only `$ai_*` events are kept.
    pub event: String,
    pub distinct_id: String,
    /// Every property; `$ai_*` ones are what the API reads back. `token` may carry the
    /// project token.
    #[schema(value_type = Object)]
    pub properties: Option<serde_json::Value>,
    /// ISO 8601, by the client's clock (corrected with `sent_at`).
    pub timestamp: Option<String>,
    /// The idempotency key: a re-sent event with the same uuid is stored once.
    pub uuid: Option<uuid::Uuid>,
    /// Milliseconds before sending, when there is no timestamp.
    pub offset: Option<i64>,
}

/// A batch as the analytics SDKs send it; a single event (with `api_key`) or a bare
/// array of events is accepted too.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaptureBatchDoc {
    /// The project's public token (`phc_…`); `token` is accepted as well.
    pub api_key: String,
    pub batch: Vec<CaptureEventDoc>,
    /// When the client sent the batch, by its clock: corrects its skew.
    pub sent_at: Option<String>,
}

/// Whether the body is gzip: by header, by posthog-js's query parameter, or by its
/// magic bytes. A `Content-Encoding` other than gzip/identity is refused.
fn is_gzip(encoding: Option<&HeaderValue>, query: Option<&str>, body: &[u8]) -> Result<bool, ApiError> {
    if let Some(encoding) = encoding {
        let encoding = encoding.to_str().unwrap_or("").trim().to_ascii_lowercase();
        match encoding.as_str() {
            "gzip" | "x-gzip" => return Ok(true),
            "" | "identity" => {}
            other => return Err(ApiError::unsupported_content_encoding(other)),
        }
    }
    let by_query = query.is_some_and(|query| {
        url::form_urlencoded::parse(query.as_bytes())
            .any(|(key, value)| key == "compression" && matches!(value.as_ref(), "gzip" | "gzip-js"))
    });
    Ok(by_query || body.starts_with(&[0x1f, 0x8b]))
}

/// Inflates `body`, reading at most `limit + 1` bytes of output.
fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut inflated = Vec::new();
    flate2::read::MultiGzDecoder::new(body)
        .take(limit as u64 + 1)
        .read_to_end(&mut inflated)
        .map_err(|_| ApiError::parse_error("The body is declared as gzip but is not valid gzip data."))?;
    if inflated.len() > limit {
        return Err(ApiError::decompressed_too_large(limit));
    }
    Ok(inflated)
}

/// A capture-lane body (capture and OTLP alike), decoded, with the share of the memory
/// budget it holds until the request ends.
pub(crate) struct BudgetedBody {
    pub(crate) bytes: Vec<u8>,
    pub(crate) reservation: Reservation,
}

/// Reads a capture-lane body: refused past [`CAPTURE_BODY_LIMIT_BYTES`] as declared or
/// as read, inflated when gzip (up to the same limit, never further), within the body
/// deadline (408), and only once the memory budget has room for it (503 otherwise).
pub(crate) async fn read_body(app: &AppState, query: Option<&str>, request: Request) -> Result<BudgetedBody, ApiError> {
    // A body declared too large is refused before a byte of it is read.
    let declared = request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|length| length > CAPTURE_BODY_LIMIT_BYTES) {
        return Err(ApiError::payload_too_large(CAPTURE_BODY_LIMIT_BYTES));
    }
    let encoding = request.headers().get(header::CONTENT_ENCODING).cloned();
    let declared_gzip = is_gzip(encoding.as_ref(), query, &[])?;
    // Reserve before reading: what a plain body will cost in all, or (gzip, or no length)
    // its raw bytes now and the rest once the decoded size is known.
    let mut reservation = app.ingest_budget.reservation();
    let upfront = match declared {
        Some(length) if !declared_gzip => length.saturating_mul(HELD_PER_BODY_BYTE),
        Some(length) => length,
        None => CAPTURE_BODY_LIMIT_BYTES,
    };
    reservation.grow_to(upfront).await?;
    let deadline = app.ingest_body_timeout;
    let raw = tokio::time::timeout(deadline, read_limited(request.into_body(), declared, CAPTURE_BODY_LIMIT_BYTES))
        .await
        .map_err(|_| ApiError::body_timeout(deadline.as_secs()))??;
    let bytes = if is_gzip(encoding.as_ref(), query, &raw)? {
        app.cpu.run(move || gunzip(&raw, CAPTURE_BODY_LIMIT_BYTES)).await??
    } else {
        raw
    };
    reservation.grow_to(bytes.len().saturating_mul(HELD_PER_BODY_BYTE)).await?;
    Ok(BudgetedBody { bytes, reservation })
}

/// The body's bytes in one buffer sized from the declared length (no growing copies),
/// refused past `limit`.
async fn read_limited(body: axum::body::Body, declared: Option<usize>, limit: usize) -> Result<Vec<u8>, ApiError> {
    use axum::body::HttpBody;
    let mut body = std::pin::pin!(body);
    let mut bytes = Vec::with_capacity(declared.unwrap_or(0).min(limit));
    while let Some(frame) = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
        let frame = frame.map_err(|_| ApiError::parse_error("The request body could not be read."))?;
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > limit {
                return Err(ApiError::payload_too_large(limit));
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok(bytes)
}

async fn ingest(app: &AppState, query: Option<&str>, request: Request) -> Result<Json<CaptureResponse>, ApiError> {
    let received_at = Utc::now();
    let BudgetedBody { bytes, reservation } = read_body(app, query, request).await?;
    let parsed = app.cpu.run(move || IngestionService::parse_capture(bytes, received_at)).await??;
    let outcome = app.ingestion.ingest_parsed(parsed, received_at).await?;
    drop(reservation);
    tracing::debug!(stored = outcome.stored, duplicates = outcome.duplicates, dropped = outcome.dropped, "capture");
    crate::metrics_layer::ingested("capture", outcome.stored, outcome.duplicates, outcome.dropped, outcome.unpriced);
    Ok(Json(CaptureResponse { status: 1 }))
}

/// Declares one documented capture handler per path (they all behave the same).
macro_rules! capture_handler {
    ($name:ident, $path:literal, $summary:literal) => {
        #[doc = $summary]
        #[utoipa::path(post, path = $path, tag = "capture",
            request_body(content = CaptureBatchDoc, description = "A batch, a single event with `api_key`, or an array of events; JSON, optionally gzip-compressed."),
            params(("compression" = Option<String>, Query, description = "`gzip-js` or `gzip`: the body is gzip-compressed")),
            responses(
                (status = 200, body = CaptureResponse, description = "Every AI event of the request is durably stored"),
                (status = 400, body = ErrorBody, description = "Malformed: names the first problem (e.g. `batch[3].event`); nothing stored"),
                (status = 401, body = ErrorBody, description = "No or unknown project token"),
                (status = 413, body = ErrorBody, description = "Larger than 20 MiB, compressed or decompressed"),
                (status = 415, body = ErrorBody, description = "A Content-Encoding other than gzip")),
            security(()))]
        pub async fn $name(
            State(app): State<AppState>,
            OriginalUri(uri): OriginalUri,
            request: Request,
        ) -> Result<Json<CaptureResponse>, ApiError> {
            ingest(&app, uri.query(), request).await
        }
    };
}

capture_handler!(capture_batch, "/batch/", "Capture a batch of events (the SDKs' default endpoint).");
capture_handler!(capture_e, "/e/", "Capture events (posthog-js's endpoint).");
capture_handler!(capture_capture, "/capture/", "Capture events (legacy endpoint).");
capture_handler!(capture_i_v0_e, "/i/v0/e/", "Capture events (ingestion v0 endpoint).");
capture_handler!(capture_ai_batch, "/i/v0/ai/batch/", "Capture AI events (the Python SDK's AI lane).");

#[cfg(test)]
mod tests {
    use std::io::Write;

    use axum::http::StatusCode;
    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn gzip_is_recognised_by_header_query_or_magic_bytes() {
        assert!(!is_gzip(None, None, b"{}").unwrap());
        assert!(!is_gzip(Some(&HeaderValue::from_static("identity")), None, b"{}").unwrap());
        assert!(is_gzip(None, Some("ver=1.0&compression=gzip-js"), b"{}").unwrap());
        assert!(is_gzip(None, None, &gzip(b"{}")).unwrap());
        assert!(is_gzip(Some(&HeaderValue::from_static("GZIP")), None, b"{}").unwrap());
        let error = is_gzip(Some(&HeaderValue::from_static("br")), None, b"{}").unwrap_err();
        assert_eq!(error.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }

    #[test]
    fn inflation_stops_at_the_limit() {
        let bomb = gzip(&vec![b' '; 64 * 1024]);
        assert!(bomb.len() < 1024);
        assert_eq!(gunzip(&bomb, 1024).unwrap_err().status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(gunzip(&bomb, 64 * 1024).unwrap().len(), 64 * 1024);
    }

    #[test]
    fn invalid_gzip_is_a_parse_error() {
        assert_eq!(gunzip(&[0x1f, 0x8b, 0, 1, 2], 1024).unwrap_err().status(), StatusCode::BAD_REQUEST);
    }
}
