//! PostgreSQL adapters: the domain's repository ports on sqlx, and the migrations.

mod ai_event_store;
mod backfills;
mod coalesced_reads;
mod evaluation_config_repository;
mod evaluation_repository;
mod evaluation_statements;
mod event_statements;
mod fresh_inserts;
mod housekeeping;
mod identity_repository;
mod job_queue;
mod job_statements;
mod judge_store;
mod key_activity;
mod memo;
mod model_price_store;
mod pool;
mod provider_key_repository;
mod provider_key_statements;
mod rate_limit_statements;
mod read_connections;
mod report_events;
mod report_statements;
mod report_store;
mod summary_store;
mod unit_of_work;
mod user_columns;
mod user_summaries;

pub use ai_event_store::PgAiEventStore;
pub use backfills::PgBackfillStore;
pub use coalesced_reads::{BatchStatement, CoalescedReads};
pub use evaluation_config_repository::PgEvaluationConfigRepository;
pub use evaluation_repository::PgEvaluationRepository;
pub use housekeeping::PgHousekeeping;
pub use identity_repository::PgIdentityRepository;
pub use job_queue::{JobStats, PgJobQueue};
pub use judge_store::PgJudgeStore;
pub use model_price_store::PgModelPriceStore;
pub use pool::{CHECK_IDLE_AFTER, connect, connect_checking_idle_after, migrate, ping};
pub use provider_key_repository::PgProviderKeyRepository;
pub use read_connections::{Lease, ReadConnections};
pub use report_events::PgReportEvents;
pub use report_store::PgReportStore;
pub use sqlx::PgPool;
pub use summary_store::{PgLlmCallLog, PgSummaryCache};
pub use unit_of_work::{PgTransaction, PgUnitOfWork, begin};

/// The statements `cargo xtask bench` times beside `psql` and the repository tests read
/// PostgreSQL's plans of, exported so that both only ever see what the service runs.
pub mod statements {
    pub use crate::ai_event_store::{EVALUATION_RUNS, experiment_items_sql};
    pub use crate::job_queue::CLAIM;
    pub use crate::judge_store::{RESULTS, SESSION_EVENTS, TRACE_EVENTS};
    pub use crate::report_events::PERIOD_COUNTS;
    pub use crate::report_store::SCHEDULE_CANDIDATES;
}
