//! The backfill use cases (spec section 4.2): estimate, start, list, read and cancel a run
//! of an evaluation over past events.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::dispatch::{dispatch_job, qualifying};
use super::{
    Backfill, BackfillError, BackfillRequest, BackfillStatus, BackfillStore, BackfillTargets, Estimate, NewBackfill,
};
use crate::evaluation::{Conditions, Evaluation, EvaluationRepository, EvaluationType};
use crate::ingestion::EventRetention;
use crate::invalid::{FieldError, Rule};
use crate::judge::JudgeStore;
use crate::llm::Llm;
use crate::unit_of_work::UnitOfWork;
use crate::{BackfillId, EvaluationId, Page, PageRequest, ProjectId, UserId};

/// Targets read per page (by the estimate and by each dispatcher job).
pub const PAGE_SIZE: u32 = 500;
/// The most targets an estimate looks at.
pub const MAX_ESTIMATED_TARGETS: u64 = 1_000_000;

/// A backfill or estimate as the client sent it, each field parsed by the adapter.
#[derive(Debug, Clone, PartialEq)]
pub struct BackfillCommand {
    pub window_start: Result<DateTime<Utc>, FieldError>,
    pub window_end: Result<DateTime<Utc>, FieldError>,
    pub conditions: Result<Option<Conditions>, FieldError>,
    pub rerun_existing: bool,
}

/// The ports backfills need.
pub struct BackfillPorts {
    pub evaluations: Arc<dyn EvaluationRepository>,
    pub backfills: Arc<dyn BackfillStore>,
    pub targets: Arc<dyn BackfillTargets>,
    pub judged: Arc<dyn JudgeStore>,
    pub llm: Arc<dyn Llm>,
    pub unit_of_work: Arc<dyn UnitOfWork>,
}

/// Backfills of evaluations.
pub struct BackfillService {
    pub(super) ports: BackfillPorts,
    retention: EventRetention,
}

impl BackfillService {
    pub fn new(ports: BackfillPorts, retention: EventRetention) -> Self {
        Self { ports, retention }
    }

    /// How many targets a backfill would judge, and what it would cost.
    pub async fn estimate(
        &self,
        project: ProjectId,
        evaluation: EvaluationId,
        command: BackfillCommand,
    ) -> Result<Estimate, BackfillError> {
        let evaluation = self.evaluation(project, evaluation).await?;
        let request = self.request(command, Utc::now())?;
        self.estimate_of(&evaluation, &request).await
    }

    async fn estimate_of(&self, evaluation: &Evaluation, request: &BackfillRequest) -> Result<Estimate, BackfillError> {
        let project = evaluation.project;
        let mut estimate = Estimate::default();
        let mut cursor = None;
        loop {
            let page = self.page(evaluation, (request.window_start, request.window_end), cursor.clone()).await?;
            let Some(last) = page.last() else { break };
            cursor = Some(last.id.clone());
            let full = page.len() as u32 == PAGE_SIZE;
            let picked = qualifying(evaluation, request.conditions.as_ref(), page, None, false);
            let judged = self.judged(project, &picked).await?;
            estimate.target_count += picked.len() as u64;
            estimate.already_judged_count += judged;
            if !full || estimate.target_count >= MAX_ESTIMATED_TARGETS {
                break;
            }
        }
        let judgements = if request.rerun_existing {
            estimate.target_count
        } else {
            estimate.target_count - estimate.already_judged_count
        };
        // Code evaluators call no LLM and take no trial credit.
        estimate.llm_calls = if evaluation.evaluation_type == EvaluationType::Hog { 0 } else { judgements };
        if estimate.llm_calls > 0 && self.ports.llm.judges_on_trial_credits(evaluation).await? {
            estimate.trial_credits_needed = estimate.llm_calls;
        }
        Ok(estimate)
    }

    /// Starts a backfill: stored queued with its first dispatcher job, in one transaction.
    pub async fn start(
        &self,
        project: ProjectId,
        evaluation: EvaluationId,
        actor: UserId,
        command: BackfillCommand,
    ) -> Result<Backfill, BackfillError> {
        let evaluation = self.evaluation(project, evaluation).await?;
        let request = self.request(command, Utc::now())?;
        let total_count = self.estimate_of(&evaluation, &request).await?.target_count;
        let backfill = NewBackfill {
            id: BackfillId::generate(),
            project,
            evaluation: evaluation.id,
            request,
            total_count,
            created_by: actor,
        };
        let mut tx = self.ports.unit_of_work.begin().await?;
        if !tx.backfills().insert(&backfill).await? {
            return Err(BackfillError::AlreadyRunning);
        }
        tx.jobs().insert(&[dispatch_job(project, backfill.id, 0)]).await?;
        tx.commit().await?;
        tracing::info!(project = %project, evaluation = %evaluation.id, backfill = %backfill.id, "backfill started");
        self.get(project, evaluation.id, backfill.id).await
    }

    /// The evaluation's backfills, newest first.
    pub async fn list(
        &self,
        project: ProjectId,
        evaluation: EvaluationId,
        page: PageRequest,
    ) -> Result<Page<Backfill>, BackfillError> {
        self.evaluation(project, evaluation).await?;
        Ok(self.ports.backfills.list(project, evaluation, page).await?)
    }

    /// One backfill of the evaluation.
    pub async fn get(
        &self,
        project: ProjectId,
        evaluation: EvaluationId,
        id: BackfillId,
    ) -> Result<Backfill, BackfillError> {
        self.ports.backfills.get(project, evaluation, id).await?.ok_or(BackfillError::NotFound)
    }

    /// Cancels a queued or running backfill: its judgements not yet started are dropped
    /// (those running finish); a finished backfill stays as it is.
    pub async fn cancel(
        &self,
        project: ProjectId,
        evaluation: EvaluationId,
        id: BackfillId,
    ) -> Result<Backfill, BackfillError> {
        let mut tx = self.ports.unit_of_work.begin().await?;
        let backfill = tx.backfills().lock(project, id).await?.filter(|b| b.evaluation == evaluation);
        let Some(backfill) = backfill else {
            return Err(BackfillError::NotFound);
        };
        if backfill.status.is_active() {
            let dropped = tx.backfills().drop_pending_judgements(project, id).await?;
            tx.backfills().finish(project, id, BackfillStatus::Cancelled, None).await?;
            tx.commit().await?;
            tracing::info!(project = %project, backfill = %id, dropped, "backfill cancelled");
        }
        self.get(project, evaluation, id).await
    }

    /// The window's next page of the evaluation's targets after `after`.
    pub(super) async fn page(
        &self,
        evaluation: &Evaluation,
        window: (DateTime<Utc>, DateTime<Utc>),
        after: Option<String>,
    ) -> Result<Vec<super::Candidate>, crate::RepositoryError> {
        let kind = evaluation.target.kind();
        self.ports.targets.candidates(evaluation.project, kind, window, after, PAGE_SIZE).await
    }

    async fn evaluation(&self, project: ProjectId, id: EvaluationId) -> Result<Evaluation, BackfillError> {
        self.ports.evaluations.find(project, id).await?.filter(|e| !e.deleted).ok_or(BackfillError::NotFound)
    }

    /// The command's fields, then the window's rules: start before end, end not in the
    /// future, start inside event retention.
    fn request(&self, command: BackfillCommand, now: DateTime<Utc>) -> Result<BackfillRequest, BackfillError> {
        let window_start = command.window_start?;
        let window_end = command.window_end?;
        let conditions = command.conditions?;
        if window_end > now {
            return Err(FieldError::new("window_end", Rule::NotInTheFuture).into());
        }
        if window_start >= window_end {
            return Err(FieldError::new("window_start", Rule::NotBeforeWindowEnd).into());
        }
        if !self.retention.keeps(window_start, now) {
            return Err(FieldError::new("window_start", Rule::PastRetention).into());
        }
        Ok(BackfillRequest { window_start, window_end, conditions, rerun_existing: command.rerun_existing })
    }

    /// How many of the picked targets were judged before.
    async fn judged(&self, project: ProjectId, picked: &[crate::judge::TargetPayload]) -> Result<u64, BackfillError> {
        if picked.is_empty() {
            return Ok(0);
        }
        let ids: Vec<uuid::Uuid> = picked.iter().map(crate::judge::TargetPayload::result_id).collect();
        Ok(self.ports.judged.stored_events(project, &ids).await?.len() as u64)
    }
}
