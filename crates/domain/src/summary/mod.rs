//! The evaluation summary (spec section 6): an LLM's analysis of why an evaluation's runs
//! pass or fail, cached, single-flight and rate-limited across replicas.

mod error;
mod model;
mod ports;
pub mod prompt;
mod rate_limits;
mod service;

pub use error::SummarizeError;
pub use model::{
    CACHE_TTL, EvaluationRun, EvaluationSummary, Flight, Frequency, MAP_CONCURRENCY, MAX_EXAMPLES, MAX_GENERATION_IDS,
    MAX_PATTERNS, MAX_RECOMMENDATIONS, MAX_RUNS, PROMPT_BUDGET_CHARS, Pattern, REASONING_MAX_CHARS, RateDecision,
    RateLimit, RunQuery, RunResult, SUMMARY_RATE_BUCKET, SUMMARY_RATE_LIMITS, SummaryConfig, SummaryDraft,
    SummaryFilter, SummaryKey, SummaryRequest, SummaryStatistics,
};
pub use ports::{RateLimiter, SummaryCache};
pub use rate_limits::{RateLimitStatements, SharedRateLimiter, WindowHits};
pub use service::{SummaryPorts, SummaryService};

#[cfg(feature = "mocks")]
pub use ports::{MockRateLimiter, MockSummaryCache};
#[cfg(feature = "mocks")]
pub use rate_limits::MockRateLimitStatements;

/// The LLM types the summary used to own; they live in `llm` now, shared.
pub use crate::llm::SystemLlm;
