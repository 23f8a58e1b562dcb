//! The evaluation runner (spec section 9): LLM-as-a-judge on every stored generation.
//! Ingestion plans judge jobs in the batch's transaction ([`plan_jobs`]); workers run
//! them through [`JudgeService`] (a [`crate::jobs::JobHandler`]); results are
//! `$ai_evaluation` events stored like ingested ones.

mod attached;
mod caps;
mod code_jobs;
pub mod content;
mod error;
mod manual_run;
mod model;
mod plan;
mod ports;
pub mod prompt;
mod results;
mod service;
mod stored_results;
mod target_run;
pub mod target_text;
mod targets;

pub use attached::{CarriedGeneration, attached_generations};
pub use caps::{Allocation, CapCount, CapHour, HourlyCapStatements, allocate, counters as cap_counters, reserve_in};
pub use error::{ManualRunError, ResultsError};
pub use manual_run::{ManualRun, ManualRunCommand};
pub use model::{
    CodeJudgePayload, Generation, HourlyCap, JudgePayload, KeyType, PlannedJob, ResultEvent, StoredBatch,
    code_result_event_id, hour_of, result_event_id,
};
pub use plan::{JUDGE_MAX_ATTEMPTS, MAX_CODE_GENERATIONS_PER_JOB, gather_code_jobs, judge_job, plan_jobs};
pub use ports::{EvaluationResultsStore, JudgeStore};
pub use results::{
    DEFAULT_DAYS, GroupCost, Interval, JudgedRun, MAX_BREAKDOWN_CHARS, MAX_BREAKDOWN_VALUES, MAX_BUCKETS, OTHER_VALUE,
    ResultCounts, ResultRow, ResultsInput, ResultsQuery, ResultsReport, RunsQuery, parse_instant, parse_results_query,
};
pub use service::{JudgeConfig, JudgePorts, JudgeService};
pub use stored_results::store_results;
pub use target_run::MAX_TARGET_EVENTS;
pub use targets::{PlannedTarget, TargetPayload, plan_target_jobs, rollout_id, target_id_of};

#[cfg(feature = "mocks")]
pub use caps::MockHourlyCapStatements;
#[cfg(feature = "mocks")]
pub use ports::{MockEvaluationResultsStore, MockJudgeStore};
