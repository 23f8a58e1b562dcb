//! Ingestion (spec section 5): the analytics SDKs' capture payloads, authenticated by the
//! project's public token, parsed into AI events (`$ai_*`; the rest is dropped and
//! counted), stored idempotently by event uuid, a batch all or nothing.

mod error;
mod model;
mod payload;
mod ports;
mod retention;
mod service;
mod timestamp;
mod writes;

pub use error::{IngestError, TokenProblem};
pub use model::{AiEventName, IncomingEvent, IngestOutcome, SpansOutcome};
pub use payload::{CapturePayload, MAX_DISTINCT_ID_CHARS, ParsedEvents, PayloadError, PayloadProblem};
pub(crate) use payload::{strip_nul, strip_nul_map};
pub use ports::{AiEventStore, EventStatements, ProjectTokens};
pub use retention::EventRetention;
pub use service::{IngestionService, ParsedCapture};
pub use timestamp::{ClientTime, MAX_FUTURE, MAX_PAST, parse_iso8601, resolve as resolve_timestamp};
pub use writes::{BatchTransactions, BatchWrites};

#[cfg(feature = "mocks")]
pub use ports::{MockAiEventStore, MockEventStatements, MockProjectTokens};
#[cfg(feature = "mocks")]
pub use writes::MockBatchWrites;
