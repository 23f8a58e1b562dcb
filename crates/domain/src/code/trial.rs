//! `evaluations/test_hog/` (spec section 4.4): a dry run of code on the project's newest
//! matching generations. Nothing is stored.

use std::sync::Arc;

use super::{CodeEvaluator, CodeUnavailable, code_input, verdict_of_run};
use crate::evaluation::{Conditions, OutputType};
use crate::invalid::{FieldError, Rule};
use crate::judge::JudgeStore;
use crate::{ProjectId, RepositoryError};

/// The most generations one dry run judges.
pub const MAX_SAMPLE_COUNT: u32 = 50;
/// How many generations are judged when the request names no count.
pub const DEFAULT_SAMPLE_COUNT: u32 = 5;
/// How many of the newest generations are read to find matching ones.
const SCANNED_GENERATIONS: u32 = 500;

/// A dry run as asked for.
#[derive(Debug, Clone)]
pub struct TestCode {
    pub source: String,
    pub sample_count: u32,
    pub allows_na: bool,
    pub conditions: Conditions,
}

impl TestCode {
    /// `sample_count` as sent: 1..=50, default 5.
    pub fn sample_count(sent: Option<i64>) -> Result<u32, FieldError> {
        match sent {
            None => Ok(DEFAULT_SAMPLE_COUNT),
            Some(n) => u32::try_from(n).ok().filter(|n| (1..=MAX_SAMPLE_COUNT).contains(n)).ok_or_else(|| {
                FieldError::new("sample_count", Rule::OutOfRange { min: 1, max: MAX_SAMPLE_COUNT.into() })
            }),
        }
    }
}

/// One generation's dry-run outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct TestedEvent {
    pub event_uuid: uuid::Uuid,
    pub trace_id: Option<String>,
    pub result: Option<bool>,
    pub applicable: Option<bool>,
    pub reasoning: String,
    pub error: Option<String>,
    pub duration_ms: u64,
}

/// Why a dry run did not run.
#[derive(Debug, thiserror::Error)]
pub enum TestCodeError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// The code could not be run at all (no fault of the code); nothing was tried.
    #[error(transparent)]
    Unavailable(#[from] CodeUnavailable),
    #[error(transparent)]
    Unexpected(#[from] RepositoryError),
}

use_case_errors!(TestCodeError: [Invalid, Unexpected]);

/// Dry runs of code evaluators.
pub struct CodeTrials {
    code: Arc<dyn CodeEvaluator>,
    store: Arc<dyn JudgeStore>,
}

impl CodeTrials {
    pub fn new(code: Arc<dyn CodeEvaluator>, store: Arc<dyn JudgeStore>) -> Self {
        Self { code, store }
    }

    /// Runs `command.source` on the newest generations its conditions match, newest first.
    pub async fn test(&self, project: ProjectId, command: TestCode) -> Result<Vec<TestedEvent>, TestCodeError> {
        self.code.check(&command.source).map_err(|error| {
            FieldError::new("source", Rule::CodeSyntax { line: error.line, column: error.column, detail: error.detail })
        })?;
        let output_type = if command.allows_na { OutputType::BooleanWithNa } else { OutputType::Boolean };
        let generations = self.store.newest_generations(project, SCANNED_GENERATIONS).await?;
        let matching = generations
            .into_iter()
            .filter(|g| command.conditions.matches_map(&g.properties, g.uuid))
            .take(command.sample_count as usize);
        let mut tested = Vec::new();
        for generation in matching {
            let trace_id = generation.properties.get("$ai_trace_id").and_then(|v| v.as_str()).map(str::to_owned);
            let run = self.code.run(&command.source, code_input(&generation)).await?;
            let (verdict, duration_ms) = match run {
                Ok(run) => {
                    let duration_ms = u64::try_from(run.duration.as_millis()).unwrap_or(u64::MAX);
                    (verdict_of_run(&run, output_type).map_err(|e| e.to_string()), duration_ms)
                }
                Err(failure) => (Err(failure.to_string()), 0),
            };
            let (result, applicable, reasoning, error) = match verdict {
                Ok(verdict) => (verdict.result, Some(verdict.applicable), verdict.reasoning, None),
                Err(error) => (None, None, String::new(), Some(error)),
            };
            let event_uuid = generation.uuid;
            tested.push(TestedEvent { event_uuid, trace_id, result, applicable, reasoning, error, duration_ms });
        }
        Ok(tested)
    }
}
