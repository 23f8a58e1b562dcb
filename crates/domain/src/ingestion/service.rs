//! The ingestion use case: authenticate the token, validate the payload, store the AI events.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::ProjectId;
use crate::evaluation::EvaluationRepository;
use crate::judge::{StoredBatch, plan_jobs};

use super::{AiEventName, AiEventStore, CapturePayload, IncomingEvent, IngestError, IngestOutcome, ProjectTokens};

/// Longest token worth looking up: real ones are 48 characters.
const MAX_TOKEN_LEN: usize = 200;

const MISSING_TOKEN: &str =
    "No project API key provided: send the project's public token as `api_key` (or `token`) in the body.";
const INVALID_TOKEN: &str = "Project API key invalid. Use the public token (`phc_...`) of the project.";

/// Ingests capture requests.
pub struct IngestionService {
    projects: Arc<dyn ProjectTokens>,
    events: Arc<dyn AiEventStore>,
    evaluations: Arc<dyn EvaluationRepository>,
}

impl IngestionService {
    pub fn new(
        projects: Arc<dyn ProjectTokens>,
        events: Arc<dyn AiEventStore>,
        evaluations: Arc<dyn EvaluationRepository>,
    ) -> Self {
        Self { projects, events, evaluations }
    }

    /// Stores the events with the judge jobs their generations bring (spec section 9).
    async fn store(&self, project: ProjectId, events: &[IncomingEvent]) -> Result<StoredBatch, IngestError> {
        if events.is_empty() {
            return Ok(StoredBatch::default());
        }
        let jobs = if events.iter().any(|e| e.event.as_str() == AiEventName::GENERATION) {
            let evaluations = self.evaluations.list_enabled(project).await?;
            plan_jobs(&evaluations, events, Utc::now())
        } else {
            Vec::new()
        };
        Ok(self.events.store_batch(project, events, &jobs).await?)
    }

    /// Ingests one (already decompressed) capture body that arrived at `received_at`.
    ///
    /// Order of checks: JSON syntax and shape (400), the project token (401), every
    /// event (400, naming the first bad one). Only then are the AI events stored, all in
    /// one atomic write; when this returns `Ok` they are durable. Nothing is stored on
    /// any error.
    pub async fn ingest(&self, body: &[u8], received_at: DateTime<Utc>) -> Result<IngestOutcome, IngestError> {
        let payload = CapturePayload::parse(body)?;
        let token = payload.token().ok_or(IngestError::Unauthenticated(MISSING_TOKEN))?;
        if token.len() > MAX_TOKEN_LEN {
            return Err(IngestError::Unauthenticated(INVALID_TOKEN));
        }
        let project =
            self.projects.find_project_by_token(token).await?.ok_or(IngestError::Unauthenticated(INVALID_TOKEN))?;

        let parsed = payload.into_events(received_at)?;
        let (events, repeated) = without_repeated_uuids(parsed.events);
        let batch = self.store(project, &events).await?;
        let stored = batch.stored;
        let outcome = IngestOutcome {
            stored,
            duplicates: repeated + (events.len() as u64).saturating_sub(stored),
            dropped: parsed.dropped,
        };
        tracing::info!(
            project = %project,
            stored = outcome.stored,
            duplicates = outcome.duplicates,
            dropped_non_ai = outcome.dropped,
            judge_jobs = batch.jobs_queued,
            skipped_by_cap = batch.skipped_by_cap,
            "capture batch ingested"
        );
        Ok(outcome)
    }
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
