//! The evaluation summary (spec section 6): its request, the runs it reads, what the LLM
//! answers, the cache key, and the rate limits.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{EvaluationId, ProjectId};

/// At most this many runs are analysed (the newest).
pub const MAX_RUNS: usize = 250;
/// At most this many `generation_ids` may be sent.
pub const MAX_GENERATION_IDS: usize = 250;
/// Each run's reasoning is cut to this many characters in a prompt.
pub const REASONING_MAX_CHARS: usize = 2_000;
/// No prompt (system + user text) is longer than this many characters.
pub const PROMPT_BUDGET_CHARS: usize = 60_000;
/// Map calls in flight at once when the runs do not fit one prompt.
pub const MAP_CONCURRENCY: usize = 5;
/// How long a summary is reused.
pub const CACHE_TTL: Duration = Duration::from_secs(3_600);
/// Patterns kept per kind, and example ids kept per pattern.
pub const MAX_PATTERNS: usize = 4;
pub const MAX_EXAMPLES: usize = 5;
/// Recommendations kept.
pub const MAX_RECOMMENDATIONS: usize = 4;

/// Which runs to summarise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SummaryFilter {
    All,
    Pass,
    Fail,
    Na,
}

impl SummaryFilter {
    pub const ALL: [SummaryFilter; 4] = [Self::All, Self::Pass, Self::Fail, Self::Na];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::Na => "na",
        }
    }

    /// Parses a wire name (exact spelling).
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|filter| filter.as_str() == raw)
    }

    /// What the summary should look for, in the prompt.
    pub fn goal(self) -> &'static str {
        match self {
            Self::All => {
                "Explain why generations pass, fail or are not applicable, so the team can see what separates good from bad outputs."
            }
            Self::Pass => "Explain what the passing generations do well: the patterns that make them pass.",
            Self::Fail => "Explain why the failing generations fail: the recurring problems and how to fix them.",
            Self::Na => "Explain why the judge found these generations not applicable to the criterion.",
        }
    }
}

/// A run's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunResult {
    Pass,
    Fail,
    Na,
}

impl RunResult {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::Na => "na",
        }
    }
}

/// One `$ai_evaluation` event of an evaluation, as a summary reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvaluationRun {
    /// The `$ai_evaluation` event's uuid.
    pub event: Uuid,
    /// `$ai_target_event_id`: the judged generation (empty when absent).
    pub generation_id: String,
    pub result: RunResult,
    /// `$ai_evaluation_reasoning` (empty when absent).
    pub reasoning: String,
    pub timestamp: DateTime<Utc>,
}

/// Which runs to read: the evaluation's `$ai_evaluation` events, newest first, at most
/// `limit`: pass = result true and applicable not false; fail = result false and
/// applicable not false; na = applicable false; all = any of them; with
/// `generation_ids`, only those whose target is one of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunQuery {
    pub evaluation: EvaluationId,
    pub filter: SummaryFilter,
    pub generation_ids: Option<Vec<Uuid>>,
    pub limit: i64,
}

/// A validated summary request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryRequest {
    pub evaluation_id: EvaluationId,
    pub filter: SummaryFilter,
    pub generation_ids: Option<Vec<Uuid>>,
    pub force_refresh: bool,
}

/// How often a pattern shows up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Frequency {
    Common,
    Occasional,
    Rare,
}

/// A pattern the LLM found, with generations that show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pattern {
    pub title: String,
    pub description: String,
    pub frequency: Frequency,
    pub example_generation_ids: Vec<String>,
}

/// Counts computed from the analysed runs (never taken from the LLM).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryStatistics {
    pub total_analyzed: u64,
    pub pass_count: u64,
    pub fail_count: u64,
    pub na_count: u64,
}

impl SummaryStatistics {
    /// The counts of `runs`.
    pub fn of(runs: &[EvaluationRun]) -> Self {
        let count = |result| runs.iter().filter(|run| run.result == result).count() as u64;
        Self {
            total_analyzed: runs.len() as u64,
            pass_count: count(RunResult::Pass),
            fail_count: count(RunResult::Fail),
            na_count: count(RunResult::Na),
        }
    }
}

/// What the LLM answers (the structured output's shape; statistics are added after).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryDraft {
    pub overall_assessment: String,
    pub pass_patterns: Vec<Pattern>,
    pub fail_patterns: Vec<Pattern>,
    pub na_patterns: Vec<Pattern>,
    pub recommendations: Vec<String>,
}

/// An evaluation summary as answered (and cached).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvaluationSummary {
    pub overall_assessment: String,
    pub pass_patterns: Vec<Pattern>,
    pub fail_patterns: Vec<Pattern>,
    pub na_patterns: Vec<Pattern>,
    pub recommendations: Vec<String>,
    pub statistics: SummaryStatistics,
}

impl EvaluationSummary {
    /// The answer from a draft: example ids outside the analysed runs dropped (and
    /// repeats), patterns without an example left dropped, lists bounded, statistics
    /// computed from `runs`.
    pub fn from_draft(draft: SummaryDraft, runs: &[EvaluationRun]) -> Self {
        let known: std::collections::HashSet<&str> = runs.iter().map(|run| run.generation_id.as_str()).collect();
        let clean = |patterns: Vec<Pattern>| -> Vec<Pattern> {
            patterns
                .into_iter()
                .filter_map(|mut pattern| {
                    let mut seen = std::collections::HashSet::new();
                    pattern
                        .example_generation_ids
                        .retain(|id| !id.is_empty() && known.contains(id.as_str()) && seen.insert(id.clone()));
                    pattern.example_generation_ids.truncate(MAX_EXAMPLES);
                    (!pattern.example_generation_ids.is_empty()).then_some(pattern)
                })
                .take(MAX_PATTERNS)
                .collect()
        };
        let mut recommendations: Vec<String> =
            draft.recommendations.into_iter().filter(|r| !r.trim().is_empty()).collect();
        recommendations.truncate(MAX_RECOMMENDATIONS);
        Self {
            overall_assessment: draft.overall_assessment,
            pass_patterns: clean(draft.pass_patterns),
            fail_patterns: clean(draft.fail_patterns),
            na_patterns: clean(draft.na_patterns),
            recommendations,
            statistics: SummaryStatistics::of(runs),
        }
    }
}

/// What a cached summary is keyed by: (project, evaluation, filter, hash of the run set,
/// hash of the judge prompt). Editing the prompt or a new run makes a new key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SummaryKey {
    pub project: ProjectId,
    pub evaluation: EvaluationId,
    pub filter: SummaryFilter,
    /// SHA-256 (hex) of the sorted run event uuids.
    pub runs_sha256: String,
    /// SHA-256 (hex) of the judge prompt.
    pub prompt_sha256: String,
}

impl SummaryKey {
    pub fn new(
        project: ProjectId,
        evaluation: EvaluationId,
        filter: SummaryFilter,
        runs: &[EvaluationRun],
        prompt: &str,
    ) -> Self {
        let mut ids: Vec<Uuid> = runs.iter().map(|run| run.event).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut runs_hash = Sha256::new();
        for id in &ids {
            runs_hash.update(id.as_bytes());
        }
        Self {
            project,
            evaluation,
            filter,
            runs_sha256: hex::encode(runs_hash.finalize()),
            prompt_sha256: hex::encode(Sha256::digest(prompt.as_bytes())),
        }
    }

    /// The key as one text (unique per project).
    pub fn as_text(&self) -> String {
        format!("{}:{}:{}:{}", self.evaluation, self.filter.as_str(), self.runs_sha256, self.prompt_sha256)
    }
}

/// Operator settings of the summary use case.
#[derive(Debug, Clone)]
pub struct SummaryConfig {
    /// `LLMA_LLM_TIMEOUT_SECS`: the whole summary's LLM work finishes within it.
    pub llm_timeout: Duration,
}

/// One rate-limit window: at most `max` requests in any `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub window: Duration,
    pub max: u32,
}

/// The summary's limits per API key: 50/min, 200/h, 500/day.
pub const SUMMARY_RATE_LIMITS: [RateLimit; 3] = [
    RateLimit { window: Duration::from_secs(60), max: 50 },
    RateLimit { window: Duration::from_secs(3_600), max: 200 },
    RateLimit { window: Duration::from_secs(86_400), max: 500 },
];

/// The rate-limit bucket of the summary endpoint.
pub const SUMMARY_RATE_BUCKET: &str = "evaluation_summary";

/// Whether a request may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    /// Counted.
    Allowed,
    /// Not counted; try again after `retry_after` (when the oldest counted request of the
    /// full window leaves it).
    Limited { retry_after: Duration },
}

/// The single-flight outcome for one cache key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flight {
    /// This request computes the summary; it must `release` the key afterwards with
    /// this lease token.
    Leader(Uuid),
    /// Another request computed it meanwhile.
    Done(Box<EvaluationSummary>),
    /// Waited as long as allowed without a result or the lease.
    GaveUp,
}
