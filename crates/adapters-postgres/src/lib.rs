//! PostgreSQL adapters: the domain's repository ports on sqlx, and the migrations.

mod ai_event_store;
mod evaluation_config_repository;
mod evaluation_repository;
mod housekeeping;
mod identity_repository;
mod job_queue;
mod judge_store;
mod pool;
mod provider_key_repository;
pub mod report_events;
pub mod report_store;
mod summary_store;

pub use ai_event_store::PgAiEventStore;
pub use evaluation_config_repository::PgEvaluationConfigRepository;
pub use evaluation_repository::PgEvaluationRepository;
pub use housekeeping::PgHousekeeping;
pub use identity_repository::PgIdentityRepository;
pub use job_queue::PgJobQueue;
pub use judge_store::PgJudgeStore;
pub use pool::{connect, migrate, ping};
pub use provider_key_repository::PgProviderKeyRepository;
pub use report_events::PgReportEvents;
pub use report_store::PgReportStore;
pub use sqlx::PgPool;
pub use summary_store::{PgLlmCallLog, PgRateLimiter, PgSummaryCache};
