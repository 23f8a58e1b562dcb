//! The worker: how many jobs of each kind run at once, leases, retries, and the sweep.

use std::time::Duration;

use super::ConfigError;
use super::env::Env;

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// `LLMA_JUDGE_CONCURRENCY`: judge jobs in flight per process (default 8).
    pub judge_concurrency: usize,
    /// `LLMA_CODE_JUDGE_CONCURRENCY`: batches of code-evaluator jobs in flight per process
    /// (default 4: one runs its code while the others are claimed or stored; with the
    /// database on the same two cores, 4 batches of 3 jobs judged ~20,700/s where 3 of 4
    /// judged ~19,500–20,400, and kept the worker's resident set under the floor at which
    /// its threads give memory back, so its pages stay its own).
    pub code_judge_concurrency: usize,
    /// `LLMA_CODE_JUDGE_BATCH`: code-evaluator jobs judged together (default 3; each holds
    /// the code-judged generations of one stored batch, up to 256).
    pub code_judge_batch: usize,
    /// `LLMA_BACKFILL_CONCURRENCY`: backfill judgements in flight per process (default 2),
    /// in a lane of their own so a backfill never takes live judgements' room.
    pub backfill_concurrency: usize,
    /// `LLMA_REPORT_RUN_CONCURRENCY`: report runs in flight per process (default 2).
    pub report_run_concurrency: usize,
    /// `LLMA_DELIVERY_CONCURRENCY`: report deliveries in flight per process (default 4).
    pub delivery_concurrency: usize,
    /// `LLMA_JOB_LEASE_SECS`: a claimed job's lease, renewed while it runs (default 60, at most 60).
    pub lease: Duration,
    /// `LLMA_JOB_RETRY_BASE_SECS`: the first retry's delay, doubled per attempt (default 5).
    pub retry_base: Duration,
    /// `LLMA_HOUSEKEEPING_INTERVAL_SECS`: how often the expired rows are swept (default
    /// 600; 0: this process never enqueues a sweep).
    pub housekeeping_interval: Duration,
}

impl WorkerConfig {
    pub fn read(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            judge_concurrency: env.number("LLMA_JUDGE_CONCURRENCY", 1..=1000, 8)?,
            code_judge_concurrency: env.number("LLMA_CODE_JUDGE_CONCURRENCY", 1..=64, 4)?,
            code_judge_batch: env.number("LLMA_CODE_JUDGE_BATCH", 1..=1000, 3)?,
            backfill_concurrency: env.number("LLMA_BACKFILL_CONCURRENCY", 1..=1000, 2)?,
            report_run_concurrency: env.number("LLMA_REPORT_RUN_CONCURRENCY", 1..=100, 2)?,
            delivery_concurrency: env.number("LLMA_DELIVERY_CONCURRENCY", 1..=1000, 4)?,
            lease: env.seconds("LLMA_JOB_LEASE_SECS", 3..=60, 60)?,
            retry_base: env.seconds("LLMA_JOB_RETRY_BASE_SECS", 0..=3600, 5)?,
            housekeeping_interval: env.seconds("LLMA_HOUSEKEEPING_INTERVAL_SECS", 0..=86_400, 600)?,
        })
    }
}
