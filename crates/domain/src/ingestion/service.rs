//! The ingestion use case: authenticate the token, validate the payload, store the AI events.

use super::TokenProblem;
use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::ProjectId;
use crate::cost::{ModelPriceStore, PriceTable, Priced, needs_price_list, stamp_cost};
use crate::evaluation::EvaluationRepository;
use crate::judge::{StoredBatch, plan_jobs, plan_target_jobs};
use crate::otel::Span;

use super::{
    AiEventName, BatchWrites, CapturePayload, EventRetention, IncomingEvent, IngestError, IngestOutcome, ParsedEvents,
    ProjectTokens, SpansOutcome,
};

/// Longest token worth looking up: real ones are 48 characters.
const MAX_TOKEN_LEN: usize = 200;

/// Ingests capture requests.
pub struct IngestionService {
    projects: Arc<dyn ProjectTokens>,
    batches: Arc<dyn BatchWrites>,
    evaluations: Arc<dyn EvaluationRepository>,
    retention: EventRetention,
    prices: Option<Pricing>,
}

/// What events are priced with: the shipped table and the projects' own prices.
struct Pricing {
    table: Arc<dyn PriceTable>,
    project_prices: Arc<dyn ModelPriceStore>,
}

impl IngestionService {
    pub fn new(
        projects: Arc<dyn ProjectTokens>,
        batches: Arc<dyn BatchWrites>,
        evaluations: Arc<dyn EvaluationRepository>,
    ) -> Self {
        Self { projects, batches, evaluations, retention: EventRetention::forever(), prices: None }
    }

    /// Generations and embeddings are priced with the project's prices, else `table`,
    /// when the client sent no cost (spec section 5.2).
    pub fn with_prices(mut self, table: Arc<dyn PriceTable>, project_prices: Arc<dyn ModelPriceStore>) -> Self {
        self.prices = Some(Pricing { table, project_prices });
        self
    }

    /// Events older than `retention` are answered as stored but kept nowhere.
    pub fn with_retention(mut self, retention: EventRetention) -> Self {
        self.retention = retention;
        self
    }

    /// The project whose public token this is (401 otherwise).
    async fn project_of(&self, token: &str) -> Result<ProjectId, IngestError> {
        // No real token is that long or holds a NUL (which the database could not even
        // compare): unknown, without a lookup.
        if token.len() > MAX_TOKEN_LEN || token.contains('\0') {
            return Err(IngestError::Unauthenticated(TokenProblem::Unknown));
        }
        self.projects.find_project_by_token(token).await?.ok_or(IngestError::Unauthenticated(TokenProblem::Unknown))
    }

    /// The project of an OpenTelemetry export's token (from the `Authorization` header or
    /// `?token=`); 401 when it is missing or unknown. Checked before the body is decoded.
    pub async fn authenticate(&self, token: Option<&str>) -> Result<ProjectId, IngestError> {
        let token = token
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(IngestError::Unauthenticated(TokenProblem::MissingInRequest))?;
        self.project_of(token).await
    }

    /// Ingests decoded OpenTelemetry spans (spec section 5.1) of `project`: the AI spans
    /// become `$ai_*` events stored like captured ones, with their judge jobs, in one
    /// write; spans that are not AI are ignored; spans without valid trace and span ids
    /// are rejected (counted, not stored).
    pub async fn ingest_spans(
        &self,
        project: ProjectId,
        spans: &[Span],
        received_at: DateTime<Utc>,
    ) -> Result<SpansOutcome, IngestError> {
        let mut outcome = SpansOutcome::default();
        let mut events = Vec::with_capacity(spans.len());
        for span in spans {
            if !is_hex_id(&span.trace_id, 32) || !is_hex_id(&span.span_id, 16) {
                outcome.rejected += 1;
                continue;
            }
            match crate::otel::to_event(span, received_at) {
                Some(event) => events.push(event),
                None => outcome.ignored += 1,
            }
        }
        let (events, expired) = self.within_retention(events, received_at);
        outcome.ignored += expired;
        let (batch, duplicates, unpriced) = self.store(project, events).await?;
        outcome.stored = batch.stored;
        outcome.duplicates = duplicates;
        outcome.unpriced = unpriced;
        log_stored(project, "otel export", &batch, outcome.duplicates, outcome.ignored, outcome.rejected);
        Ok(outcome)
    }

    /// The events inside the retention window, and how many were older (answered as
    /// stored, kept nowhere).
    fn within_retention(&self, events: Vec<IncomingEvent>, now: DateTime<Utc>) -> (Vec<IncomingEvent>, u64) {
        let before = events.len();
        let kept: Vec<IncomingEvent> = events.into_iter().filter(|e| self.retention.keeps(e.timestamp, now)).collect();
        let expired = (before - kept.len()) as u64;
        (kept, expired)
    }

    /// Stores a request's events (each uuid once), priced, with the judge jobs their
    /// generations bring (spec section 9); also says how many were repeats, within the
    /// request or stored before, and how many named a model without a known price.
    async fn store(
        &self,
        project: ProjectId,
        events: Vec<IncomingEvent>,
    ) -> Result<(StoredBatch, u64, u64), IngestError> {
        let (mut events, repeated) = without_repeated_uuids(events);
        if events.is_empty() {
            return Ok((StoredBatch::default(), repeated, 0));
        }
        let unpriced = self.price(project, &mut events).await?;
        let may_judge = events.iter().any(|e| {
            e.event.as_str() == AiEventName::GENERATION
                || e.properties.contains_key("$ai_trace_id")
                || e.properties.contains_key("$ai_session_id")
        });
        let (jobs, targets) = if may_judge {
            let evaluations = self.evaluations.list_enabled(project).await?;
            let now = Utc::now();
            (plan_jobs(&evaluations, &events, now), plan_target_jobs(&evaluations, &events, now))
        } else {
            (Vec::new(), Vec::new())
        };
        let batch = self.batches.store_batch(project, &events, &jobs, &targets).await?;
        Ok((batch, repeated + (events.len() as u64).saturating_sub(batch.stored), unpriced))
    }

    /// Stamps the cost of every generation and embedding (spec section 5.2); returns how
    /// many named a model no price is known for.
    async fn price(&self, project: ProjectId, events: &mut [IncomingEvent]) -> Result<u64, IngestError> {
        let Some(pricing) = &self.prices else {
            return Ok(0);
        };
        let is_priced = |e: &IncomingEvent| {
            let name = e.event.as_str();
            name == AiEventName::GENERATION || name == AiEventName::EMBEDDING
        };
        let own = if events.iter().any(|e| is_priced(e) && needs_price_list(&e.properties)) {
            pricing.project_prices.all(project).await?
        } else {
            Vec::new()
        };
        let priced = events.iter_mut().filter(|e| is_priced(e));
        let unpriced = priced
            .map(|event| stamp_cost(&mut event.properties, event.timestamp, &own, &*pricing.table))
            .filter(|priced| *priced == Priced::ModelNotFound)
            .count();
        Ok(unpriced as u64)
    }

    /// Ingests one (already decompressed) capture body that arrived at `received_at`:
    /// [`Self::parse_capture`], then [`Self::ingest_parsed`].
    pub async fn ingest(
        &self,
        body: impl AsRef<[u8]> + Send,
        received_at: DateTime<Utc>,
    ) -> Result<IngestOutcome, IngestError> {
        let parsed = Self::parse_capture(body, received_at)?;
        self.ingest_parsed(parsed, received_at).await
    }

    /// The CPU part of a capture: JSON syntax and shape (400), then every event. No I/O,
    /// so a caller can run it off its async workers. The body is taken by value and let
    /// go once parsed: a large batch is not held twice.
    pub fn parse_capture(body: impl AsRef<[u8]>, received_at: DateTime<Utc>) -> Result<ParsedCapture, IngestError> {
        let payload = CapturePayload::parse(body.as_ref())?;
        drop(body);
        let token = payload.token().map(str::to_owned);
        let events = payload.into_events(received_at).map_err(IngestError::from);
        Ok(ParsedCapture { token, events })
    }

    /// Stores a parsed capture. Order of checks: the project token (401), then the
    /// events' own errors (400, naming the first bad one), so the answer is the one an
    /// unparsed body would get. Only then are the AI events stored, all in one atomic
    /// write; when this returns `Ok` they are durable. Nothing is stored on any error.
    pub async fn ingest_parsed(
        &self,
        parsed: ParsedCapture,
        received_at: DateTime<Utc>,
    ) -> Result<IngestOutcome, IngestError> {
        let token = parsed.token.as_deref().ok_or(IngestError::Unauthenticated(TokenProblem::MissingInBody))?;
        let project = self.project_of(token).await?;
        let parsed = parsed.events?;
        let (events, expired) = self.within_retention(parsed.events, received_at);
        let (batch, duplicates, unpriced) = self.store(project, events).await?;
        let outcome = IngestOutcome { stored: batch.stored, duplicates, dropped: parsed.dropped + expired, unpriced };
        log_stored(project, "capture batch", &batch, outcome.duplicates, outcome.dropped, 0);
        Ok(outcome)
    }
}

/// One line per stored batch, whichever door it came through.
fn log_stored(project: ProjectId, door: &str, batch: &StoredBatch, duplicates: u64, dropped: u64, rejected: u64) {
    tracing::info!(
        project = %project,
        stored = batch.stored,
        duplicates,
        dropped_non_ai = dropped,
        rejected,
        judge_jobs = batch.jobs_queued,
        skipped_by_cap = batch.skipped_by_cap,
        "{door} ingested"
    );
}

/// A capture body parsed, before its token is checked.
#[derive(Debug)]
pub struct ParsedCapture {
    token: Option<String>,
    /// The events, or the first event's error (answered after the token's).
    events: Result<ParsedEvents, IngestError>,
}

/// Whether `id` is `len` hex digits, not all zero (OTLP's invalid id).
fn is_hex_id(id: &str, len: usize) -> bool {
    id.len() == len && id.bytes().all(|b| b.is_ascii_hexdigit()) && id.bytes().any(|b| b != b'0')
}

/// The events with each uuid's first occurrence only, and how many repeats were removed.
fn without_repeated_uuids(events: Vec<IncomingEvent>) -> (Vec<IncomingEvent>, u64) {
    let mut seen = HashSet::with_capacity(events.len());
    let before = events.len();
    let kept: Vec<IncomingEvent> = events.into_iter().filter(|event| seen.insert(event.uuid)).collect();
    let repeated = (before - kept.len()) as u64;
    (kept, repeated)
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
