//! A backfill's dispatcher: one job per page of targets. In one transaction it locks the
//! backfill, hands the page's qualifying, not yet judged targets to judge jobs of the
//! backfill's own lane (within the hour's cap), moves the cursor and queues the next
//! page — due now, or at the next hour when the cap is used up — so progress survives
//! restarts and a page is dispatched once whatever the replicas.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use super::service::PAGE_SIZE;
use super::{Backfill, BackfillService, BackfillStatus, Candidate, DispatchPayload, DispatchedPage};
use crate::evaluation::{Conditions, Evaluation, TargetKind};
use crate::jobs::{ClaimedJob, Debounce, JobEnd, JobHandler, JobKind, JobOutcome, NewJob};
use crate::judge::{TargetPayload, hour_of, reserve_in, rollout_id};
use crate::unit_of_work::Transaction;
use crate::{BackfillId, ProjectId, RepositoryError};

/// Tries a dispatcher job gets.
const DISPATCH_MAX_ATTEMPTS: u32 = 5;

/// The dispatcher job of `backfill`'s page `page`.
pub fn dispatch_job(project: ProjectId, backfill: BackfillId, page: u64) -> NewJob {
    let payload = DispatchPayload { backfill, page };
    NewJob::new(
        project,
        JobKind::Backfill,
        Some(format!("backfill:{backfill}:page:{page}")),
        serde_json::to_value(&payload).unwrap_or(Value::Null),
        DISPATCH_MAX_ATTEMPTS,
    )
}

/// The candidates that `conditions` (else the evaluation's own) pick, as judge payloads of
/// `backfill` (none: for an estimate), in candidate order. Rollout is decided as live
/// work decides it: by the generation's uuid, or by the trace's or session's id.
pub fn qualifying(
    evaluation: &Evaluation,
    conditions: Option<&Conditions>,
    candidates: Vec<Candidate>,
    backfill: Option<BackfillId>,
    rerun: bool,
) -> Vec<TargetPayload> {
    candidates.into_iter().filter_map(|candidate| picked(evaluation, conditions, candidate, backfill, rerun)).collect()
}

fn picked(
    evaluation: &Evaluation,
    conditions: Option<&Conditions>,
    candidate: Candidate,
    backfill: Option<BackfillId>,
    rerun: bool,
) -> Option<TargetPayload> {
    let conditions = conditions.unwrap_or(&evaluation.conditions);
    let kind = evaluation.target.kind();
    let rollout = match kind {
        TargetKind::Generation => candidate.id.parse().ok()?,
        TargetKind::Trace | TargetKind::Session => rollout_id(kind, &candidate.id),
    };
    if !candidate.generations.iter().any(|properties| conditions.matches_map(properties, rollout)) {
        return None;
    }
    Some(TargetPayload {
        evaluation: evaluation.id,
        target: kind,
        target_id: candidate.id,
        queued_at: Utc::now(),
        backfill: backfill.map(|b| b.0),
        rerun,
    })
}

impl BackfillService {
    async fn dispatch(&self, job: &ClaimedJob) -> Result<JobOutcome, RepositoryError> {
        let payload: DispatchPayload = match serde_json::from_value(job.payload.clone()) {
            Ok(payload) => payload,
            Err(error) => return Ok(JobOutcome::Fail(format!("unreadable backfill payload: {error}"))),
        };
        let project = job.project;
        let mut tx = self.ports.unit_of_work.begin().await?;
        let Some(backfill) = tx.backfills().lock(project, payload.backfill).await? else {
            return Ok(JobOutcome::Complete);
        };
        if !backfill.status.is_active() {
            return end(tx, job).await;
        }
        let evaluation = self.ports.evaluations.find(project, backfill.evaluation).await?.filter(|e| !e.deleted);
        let Some(evaluation) = evaluation else {
            let reason = Some("the evaluation was deleted".to_owned());
            tx.backfills().finish(project, backfill.id, BackfillStatus::Failed, reason).await?;
            return end(tx, job).await;
        };
        let window = (backfill.window_start, backfill.window_end);
        let candidates = self.page(&evaluation, window, backfill.cursor.clone()).await?;
        let full_page = candidates.len() as u32 == PAGE_SIZE;
        let now = Utc::now();
        let plan = self.plan_page(&mut *tx, &backfill, &evaluation, candidates, now).await?;
        let jobs: Vec<NewJob> = plan.dispatch.iter().map(|target| target.job(project)).collect();
        if !jobs.is_empty() {
            tx.jobs().insert(&jobs).await?;
        }
        let dispatched_all = !full_page && !plan.cap_reached;
        let page = DispatchedPage {
            status: BackfillStatus::Running,
            cursor: plan.cursor.or(backfill.cursor.clone()),
            dispatched_all,
            dispatched: jobs.len() as u64,
            skipped: plan.skipped,
        };
        tx.backfills().add_page(project, backfill.id, &page).await?;
        let after = Backfill {
            dispatched_all,
            dispatched_count: backfill.dispatched_count + page.dispatched,
            ..backfill.clone()
        };
        if after.is_done() {
            tx.backfills().finish(project, backfill.id, BackfillStatus::Completed, None).await?;
        } else if !dispatched_all {
            let due = if plan.cap_reached { hour_of(now) + Duration::hours(1) } else { now };
            let next = dispatch_job(project, backfill.id, payload.page + 1);
            tx.jobs().debounce(&[Debounce { job: next, due, latest: due, create: true }]).await?;
        }
        tracing::info!(
            project = %project, backfill = %backfill.id, page = payload.page, dispatched = page.dispatched,
            skipped = page.skipped, cap_reached = plan.cap_reached, "backfill page dispatched"
        );
        end(tx, job).await
    }

    /// Walks the page in order: targets the conditions do not pick are passed over, judged
    /// ones skipped (unless rerun), the rest dispatched while the hour's cap has room.
    async fn plan_page(
        &self,
        tx: &mut dyn Transaction,
        backfill: &Backfill,
        evaluation: &Evaluation,
        candidates: Vec<Candidate>,
        now: DateTime<Utc>,
    ) -> Result<PagePlan, RepositoryError> {
        let last_id = candidates.last().map(|c| c.id.clone());
        let picked = qualifying(
            evaluation,
            backfill.conditions.as_ref(),
            candidates,
            Some(backfill.id),
            backfill.rerun_existing,
        );
        let judged = if backfill.rerun_existing || picked.is_empty() {
            Vec::new()
        } else {
            let ids: Vec<uuid::Uuid> = picked.iter().map(TargetPayload::result_id).collect();
            self.ports.judged.stored_events(backfill.project, &ids).await?
        };
        let (skipped, to_judge): (Vec<TargetPayload>, Vec<TargetPayload>) =
            picked.into_iter().partition(|target| judged.contains(&target.result_id()));
        let mut plan = PagePlan { skipped: skipped.len() as u64, cursor: last_id, ..PagePlan::default() };
        let room = match evaluation.max_runs_per_hour {
            None => to_judge.len(),
            Some(cap) => {
                let wanted = u32::try_from(to_judge.len()).unwrap_or(u32::MAX);
                let counter = (evaluation.id, cap.get(), hour_of(now));
                reserve_in(tx, backfill.project, counter, wanted, false).await? as usize
            }
        };
        if room < to_judge.len() {
            // The cap is used up: the page goes on from the first target not dispatched.
            plan.cap_reached = true;
            plan.cursor = if room == 0 { None } else { Some(to_judge[room - 1].target_id.clone()) };
            let before_cursor = |target: &&TargetPayload| {
                plan.cursor.as_deref().is_some_and(|cursor| target.target_id.as_str() <= cursor)
            };
            plan.skipped = skipped.iter().filter(before_cursor).count() as u64;
        }
        plan.dispatch = to_judge.into_iter().take(room).collect();
        Ok(plan)
    }
}

/// What one page dispatches and how far it got.
#[derive(Debug, Default)]
struct PagePlan {
    dispatch: Vec<TargetPayload>,
    skipped: u64,
    /// The last candidate looked at; `None`: none (the cursor stays).
    cursor: Option<String>,
    cap_reached: bool,
}

async fn end(mut tx: Box<dyn Transaction>, job: &ClaimedJob) -> Result<JobOutcome, RepositoryError> {
    if tx.jobs().end(&job.lease, Some(JobEnd::Complete)).await? {
        tx.commit().await?;
    }
    Ok(JobOutcome::Finished)
}

/// Counts one ended judgement of a backfill in the transaction that ends it, and completes
/// the backfill when it was the last.
pub async fn count_ended(
    tx: &mut dyn Transaction,
    project: ProjectId,
    backfill: BackfillId,
    outcome: super::TargetOutcome,
) -> Result<(), RepositoryError> {
    let Some(now) = tx.backfills().count_outcome(project, backfill, outcome).await? else {
        return Ok(());
    };
    if now.status == BackfillStatus::Running && now.is_done() {
        tx.backfills().finish(project, backfill, BackfillStatus::Completed, None).await?;
    }
    Ok(())
}

#[async_trait]
impl JobHandler for BackfillService {
    async fn run(&self, job: &ClaimedJob) -> JobOutcome {
        match self.dispatch(job).await {
            Ok(outcome) => outcome,
            Err(error) => JobOutcome::Retry(format!("storage failure: {}", error.0)),
        }
    }

    /// A page that cannot be dispatched ends its backfill failed, with the reason.
    async fn give_up(&self, job: &ClaimedJob, reason: String) -> JobOutcome {
        let Ok(payload) = serde_json::from_value::<DispatchPayload>(job.payload.clone()) else {
            return JobOutcome::Fail(reason);
        };
        let failed = async {
            let mut tx = self.ports.unit_of_work.begin().await?;
            let locked = tx.backfills().lock(job.project, payload.backfill).await?;
            if locked.is_some_and(|backfill| backfill.status.is_active()) {
                let status = BackfillStatus::Failed;
                tx.backfills().finish(job.project, payload.backfill, status, Some(reason.clone())).await?;
            }
            if tx.jobs().end(&job.lease, Some(JobEnd::Fail(reason.clone()))).await? {
                tx.commit().await?;
            }
            Ok::<_, RepositoryError>(())
        };
        match failed.await {
            Ok(()) => JobOutcome::Finished,
            Err(error) => JobOutcome::Fail(format!("{reason}; recording it failed: {}", error.0)),
        }
    }
}

#[cfg(test)]
#[path = "dispatch_tests.rs"]
mod tests;
