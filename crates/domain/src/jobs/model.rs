//! Jobs as the queue stores and hands them out.

use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::ProjectId;

/// A job's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub Uuid);

impl JobId {
    /// The id of the one job of `kind` keyed `key`: derived from both, so the table's
    /// primary key alone keeps a key to one job (no second index written with every job).
    /// `job_id_for_key` in `migrations/0011_job_ids_from_keys.sql` derives the same.
    pub fn for_key(kind: JobKind, key: &str) -> Self {
        let digest = Sha256::digest(format!("{}:{key}", kind.as_str()).as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Self(Uuid::from_bytes(bytes))
    }
}

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// What a job does. The stored name is the wire of the `kind` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// Judge one generation with each evaluation it matched (spec section 9).
    Judge,
    /// Judge the generations of one stored batch, each with the code evaluators it matched
    /// (spec section 4.4): no LLM, so several such jobs are run together.
    JudgeCode,
    /// Delete what has expired (spec section 10).
    Housekeeping,
    /// Generate one run of an evaluation report (spec section 7).
    ReportRun,
    /// Deliver one run to one target (one address for e-mail).
    ReportDelivery,
    /// Judge one trace or session (or one generation of a backfill) with one evaluation,
    /// once it has settled (spec section 4.1).
    JudgeTarget,
    /// A backfill's judgement of one target: as `JudgeTarget`, in a lane of its own so
    /// that a backfill never takes the room of live judgements (spec section 4.2).
    BackfillJudge,
    /// Hand a backfill's targets to `BackfillJudge` jobs, a page at a time.
    Backfill,
}

impl JobKind {
    pub const ALL: &'static [JobKind] = &[
        JobKind::Judge,
        JobKind::JudgeCode,
        JobKind::Housekeeping,
        JobKind::ReportRun,
        JobKind::ReportDelivery,
        JobKind::JudgeTarget,
        JobKind::BackfillJudge,
        JobKind::Backfill,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Judge => "judge",
            Self::JudgeCode => "judge_code",
            Self::Housekeeping => "housekeeping",
            Self::ReportRun => "report_run",
            Self::ReportDelivery => "report_delivery",
            Self::JudgeTarget => "judge_target",
            Self::BackfillJudge => "backfill_judge",
            Self::Backfill => "backfill",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|kind| kind.as_str() == raw)
    }
}

/// A job to enqueue. Build it with [`NewJob::new`], which gives a keyed job the id its
/// key determines.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub id: JobId,
    pub project: ProjectId,
    pub kind: JobKind,
    /// At most one job per (kind, key) ever exists; `None` for work that is never
    /// deduplicated (a manual run).
    pub unique_key: Option<String>,
    pub payload: Value,
    /// What the job's handler would otherwise read back, given to it as text (a
    /// `judge_code` job's generations as stored); dropped when the job ends.
    pub attachment: Option<String>,
    /// Attempts before the job ends failed (a lease that lapsed counts as one).
    pub max_attempts: u32,
}

impl NewJob {
    /// A job of `kind`; with a `unique_key` its id is [`JobId::for_key`] (at most one such
    /// job exists, ever), without one a fresh time-ordered id.
    pub fn new(
        project: ProjectId,
        kind: JobKind,
        unique_key: Option<String>,
        payload: Value,
        max_attempts: u32,
    ) -> Self {
        let id = match &unique_key {
            Some(key) => JobId::for_key(kind, key),
            None => JobId(Uuid::now_v7()),
        };
        Self { id, project, kind, unique_key, payload, attachment: None, max_attempts }
    }

    /// The job carrying `attachment` to its handler.
    pub fn with_attachment(self, attachment: String) -> Self {
        Self { attachment: Some(attachment), ..self }
    }
}

/// A debounced job (a trace's or session's judgement): queued with the first event that
/// qualifies it, due at `due`; each later event moves its due time forward to the `due`
/// it brings, never past the `latest` the job was queued with. A job no longer pending
/// (running, done) is not touched: a late event does not judge again.
#[derive(Debug, Clone, PartialEq)]
pub struct Debounce {
    pub job: NewJob,
    pub due: chrono::DateTime<chrono::Utc>,
    pub latest: chrono::DateTime<chrono::Utc>,
    /// Queue the job when it does not exist; `false`: only move an existing one.
    pub create: bool,
}

/// The proof that a worker holds a job: renew, finish and release match both parts, so a
/// worker whose lease lapsed (and was taken over) can no longer touch the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lease {
    pub job: JobId,
    pub token: Uuid,
}

/// A job handed to a worker, leased.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedJob {
    pub lease: Lease,
    pub project: ProjectId,
    /// `None` for a kind this build does not know (a newer replica's job).
    pub kind: Option<JobKind>,
    pub payload: Value,
    /// What it was queued with for its handler ([`NewJob::attachment`]).
    pub attachment: Option<String>,
    /// Including this one.
    pub attempts: u32,
    pub max_attempts: u32,
}

/// How long to wait before attempt `attempts + 1`: `base` doubled per attempt, at most
/// 10 minutes.
pub fn backoff(base: Duration, attempts: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(16));
    base.saturating_mul(factor).min(Duration::from_secs(600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let base = Duration::from_secs(2);
        assert_eq!(backoff(base, 1), Duration::from_secs(2));
        assert_eq!(backoff(base, 2), Duration::from_secs(4));
        assert_eq!(backoff(base, 3), Duration::from_secs(8));
        assert_eq!(backoff(base, 40), Duration::from_secs(600));
    }

    #[test]
    fn a_keyed_job_has_the_id_of_its_kind_and_key() {
        let job = |kind, key: &str| NewJob::new(ProjectId(1), kind, Some(key.into()), Value::Null, 3).id;
        assert_eq!(job(JobKind::Judge, "a"), job(JobKind::Judge, "a"));
        assert_ne!(job(JobKind::Judge, "a"), job(JobKind::Judge, "b"));
        assert_ne!(job(JobKind::Judge, "a"), job(JobKind::ReportRun, "a"));
        let unkeyed = || NewJob::new(ProjectId(1), JobKind::Judge, None, Value::Null, 3).id;
        assert_ne!(unkeyed(), unkeyed());
    }

    #[test]
    fn kinds_round_trip() {
        for kind in JobKind::ALL {
            assert_eq!(JobKind::parse(kind.as_str()), Some(*kind));
        }
        assert_eq!(JobKind::parse("report"), None);
        assert_eq!(JobKind::parse("report_run"), Some(JobKind::ReportRun));
    }
}
