//! OpenTelemetry GenAI spans (spec section 5.1): which spans are AI calls, and the
//! `$ai_*` event each becomes. Pure: the HTTP adapter decodes OTLP into [`Span`]s, the
//! ingestion service stores what [`to_event`] makes of them.

mod mapping;
mod messages;
mod model;

pub use mapping::{AiSpanKind, classify, event_uuid, to_event};
pub use model::{Span, SpanEvent, SpanStatus};
