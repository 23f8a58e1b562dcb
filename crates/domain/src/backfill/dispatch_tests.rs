use std::sync::Arc;
use std::time::Duration;

use chrono::{Timelike, Utc};
use serde_json::Map;
use uuid::Uuid;

use super::*;
use crate::backfill::{
    BackfillPorts, BackfillStatus, DispatchedPage, MockBackfillStore, MockBackfillTargets, TargetOutcome,
};
use crate::evaluation::{EvaluationTarget, MaxRunsPerHour, MockEvaluationRepository, Settling};
use crate::ingestion::EventRetention;
use crate::jobs::{JobId, Lease};
use crate::judge::MockJudgeStore;
use crate::llm::MockLlm;
use crate::unit_of_work::testing::{MockTransaction, unit_of_work};
use crate::{EvaluationId, ProjectId};

const PROJECT: ProjectId = ProjectId(7);

fn evaluation(cap: Option<i64>) -> Evaluation {
    Evaluation {
        project: PROJECT,
        target: EvaluationTarget::Trace(Settling::FixedWindow { window: Duration::from_secs(60) }),
        max_runs_per_hour: cap.and_then(MaxRunsPerHour::parse),
        ..crate::evaluation::test_support::evaluation()
    }
}

fn backfill(evaluation: EvaluationId) -> Backfill {
    Backfill {
        id: BackfillId(Uuid::from_u128(0xBF)),
        project: PROJECT,
        evaluation,
        status: BackfillStatus::Queued,
        window_start: Utc::now() - chrono::Duration::hours(3),
        window_end: Utc::now(),
        conditions: None,
        rerun_existing: false,
        total_count: 3,
        dispatched_count: 0,
        skipped_count: 0,
        completed_count: 0,
        failed_count: 0,
        cursor: None,
        dispatched_all: false,
        error: None,
        created_at: Utc::now(),
        created_by: None,
    }
}

fn candidate(id: &str) -> Candidate {
    Candidate { id: id.into(), generations: vec![Map::new()] }
}

fn claimed() -> ClaimedJob {
    let payload = DispatchPayload { backfill: BackfillId(Uuid::from_u128(0xBF)), page: 0 };
    ClaimedJob {
        lease: Lease { job: JobId(Uuid::from_u128(0x10B)), token: Uuid::from_u128(0x70) },
        project: PROJECT,
        kind: Some(JobKind::Backfill),
        payload: serde_json::to_value(payload).unwrap(),
        attachment: None,
        attempts: 1,
        max_attempts: 5,
    }
}

/// A service whose event reads find traces `a`, `b` and `c`, of which `b` was judged.
fn service(evaluation: &Evaluation, tx: MockTransaction) -> BackfillService {
    let (unit_of_work, _) = unit_of_work(tx);
    let mut evaluations = MockEvaluationRepository::new();
    let found = evaluation.clone();
    evaluations.expect_find().returning(move |_, _| Ok(Some(found.clone())));
    let mut targets = MockBackfillTargets::new();
    targets.expect_candidates().returning(|_, _, _, _, _| Ok(vec![candidate("a"), candidate("b"), candidate("c")]));
    let judged_b = TargetPayload {
        evaluation: evaluation.id,
        target: TargetKind::Trace,
        target_id: "b".into(),
        queued_at: Utc::now(),
        backfill: None,
        rerun: false,
    }
    .result_id();
    let mut judged = MockJudgeStore::new();
    judged
        .expect_stored_events()
        .returning(move |_, ids| Ok(ids.iter().copied().filter(|id| *id == judged_b).collect()));
    BackfillService::new(
        BackfillPorts {
            evaluations: Arc::new(evaluations),
            backfills: Arc::new(MockBackfillStore::new()),
            targets: Arc::new(targets),
            judged: Arc::new(judged),
            llm: Arc::new(MockLlm::new()),
            unit_of_work: Arc::new(unit_of_work),
        },
        EventRetention::forever(),
    )
}

#[tokio::test]
async fn a_page_skips_what_was_judged_and_completes_the_backfill_when_it_was_the_last() {
    let evaluation = evaluation(None);
    let mut tx = MockTransaction::default();
    let stored = backfill(evaluation.id);
    tx.backfills.expect_lock().return_once(move |_, _| Ok(Some(stored)));
    tx.jobs
        .expect_insert()
        .withf(|jobs| jobs.len() == 2 && jobs.iter().all(|job| job.kind == JobKind::BackfillJudge))
        .times(1)
        .returning(|jobs| Ok(jobs.len() as u64));
    let expected = DispatchedPage {
        status: BackfillStatus::Running,
        cursor: Some("c".into()),
        dispatched_all: true,
        dispatched: 2,
        skipped: 1,
    };
    tx.backfills.expect_add_page().withf(move |_, _, page| *page == expected).times(1).returning(|_, _, _| Ok(()));
    tx.backfills.expect_finish().never();
    tx.jobs.expect_debounce().never();
    tx.jobs.expect_end().times(1).returning(|_, _| Ok(true));

    assert_eq!(service(&evaluation, tx).run(&claimed()).await, JobOutcome::Finished);
}

#[tokio::test]
async fn a_used_up_cap_stops_the_page_at_the_last_dispatched_target_until_the_next_hour() {
    let evaluation = evaluation(Some(2));
    let mut tx = MockTransaction::default();
    let stored = backfill(evaluation.id);
    tx.backfills.expect_lock().return_once(move |_, _| Ok(Some(stored)));
    let id = evaluation.id;
    tx.hourly_caps.expect_lock_counters().returning(move |_, counters| Ok(vec![(counters[0], 1)]));
    tx.hourly_caps
        .expect_add_to_counters()
        .withf(move |counts| counts.len() == 1 && counts[0].evaluation == id && counts[0].granted == 1)
        .times(1)
        .returning(|_| Ok(()));
    tx.jobs.expect_insert().withf(|jobs| jobs.len() == 1).times(1).returning(|jobs| Ok(jobs.len() as u64));
    // Only `a` went: `b` (judged) comes after the cursor and is counted with the next page.
    let expected = DispatchedPage {
        status: BackfillStatus::Running,
        cursor: Some("a".into()),
        dispatched_all: false,
        dispatched: 1,
        skipped: 0,
    };
    tx.backfills.expect_add_page().withf(move |_, _, page| *page == expected).times(1).returning(|_, _, _| Ok(()));
    tx.jobs
        .expect_debounce()
        .withf(|next| {
            next.len() == 1
                && next[0].job.kind == JobKind::Backfill
                && next[0].due.minute() == 0
                && next[0].due > Utc::now()
                && next[0].due <= Utc::now() + chrono::Duration::hours(1)
        })
        .times(1)
        .returning(|_| Ok(1));
    tx.jobs.expect_end().times(1).returning(|_, _| Ok(true));

    assert_eq!(service(&evaluation, tx).run(&claimed()).await, JobOutcome::Finished);
}

#[tokio::test]
async fn the_last_judgement_completes_a_running_backfill() {
    let mut tx = MockTransaction::default();
    let done = Backfill {
        status: BackfillStatus::Running,
        dispatched_all: true,
        dispatched_count: 2,
        completed_count: 1,
        failed_count: 1,
        ..backfill(EvaluationId::generate())
    };
    tx.backfills.expect_count_outcome().return_once(move |_, _, _| Ok(Some(done)));
    tx.backfills
        .expect_finish()
        .withf(|_, _, status, error| *status == BackfillStatus::Completed && error.is_none())
        .times(1)
        .returning(|_, _, _, _| Ok(()));
    count_ended(&mut tx, PROJECT, BackfillId(Uuid::from_u128(0xBF)), TargetOutcome::Failed).await.unwrap();
}
