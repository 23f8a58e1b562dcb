//! Unit tests of the report use cases with every port mocked: the scheduler's gates, the
//! fallback when the LLM fails, deliveries never sent twice and their retry plan, and
//! the run page's link checks.

use std::sync::{Arc, Mutex};

use chrono::{Duration as Span, TimeZone};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::*;
use crate::crypto::MockKeyCipher;
use crate::evaluation::MockEvaluationRepository;
use crate::jobs::{ClaimedJob, JobEnd, JobHandler, JobKind, JobOutcome};
use crate::jobs::{Lease, MockJobQueue};
use crate::llm::{CompletionError, LlmError, LlmPurpose, MockLlm, PaidBy};
use crate::reports::ReportError;
use crate::reports::delivery::{DeliveryRecord, SendFailure};
use crate::reports::delivery::{DeliveryState, MAX_DELIVERY_ATTEMPTS};
use crate::reports::model::*;
use crate::reports::model::{AlertCondition, AlertOperator, ResultCounts};
use crate::reports::ports::{
    MockLinkSigner, MockReportDelivery, MockReportEvents, MockReportRepository, MockReportRunStore, StoredDelivery,
};
use crate::reports::ports::{NewRun, ScheduleCandidate};
use crate::reports::run_writes::MockRunWrites;
use crate::reports::targets::TargetPolicy;
use crate::reports::{LINK_LIFETIME, content, schedule};
use crate::{EvaluationId, ProjectId, ReportId, ReportRunId};

const PROJECT: ProjectId = ProjectId(3);

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
}

fn report(frequency: Frequency) -> Report {
    Report {
        id: ReportId(uuid::Uuid::from_u128(0x5E)),
        project: PROJECT,
        evaluation: EvaluationId(uuid::Uuid::from_u128(0xE1)),
        frequency,
        alert_condition: None,
        rrule: String::new(),
        starts_at: None,
        timezone_name: "UTC".into(),
        next_delivery_date: None,
        delivery_targets: vec![],
        max_sample_size: 200,
        enabled: true,
        deleted: false,
        last_delivered_at: None,
        report_prompt_guidance: String::new(),
        trigger_threshold: 100,
        cooldown_minutes: 60,
        daily_run_cap: 10,
        created_by: None,
        created_at: now() - Span::days(30),
    }
}

/// A report the scheduler looks at, with what its counts answer.
#[derive(Clone)]
struct DueCandidate {
    report: Report,
    automatic_runs_last_day: u64,
    new_results: u64,
    window: ResultCounts,
}

fn candidate(report: Report) -> DueCandidate {
    DueCandidate { report, automatic_runs_last_day: 0, new_results: 0, window: ResultCounts::default() }
}

#[derive(Default)]
struct Mocks {
    llm: MockLlm,
    reports: MockReportRepository,
    runs: MockReportRunStore,
    run_writes: MockRunWrites,
    events: MockReportEvents,
    evaluations: MockEvaluationRepository,
    jobs: MockJobQueue,
    signer: MockLinkSigner,
    delivery: MockReportDelivery,
}

impl Mocks {
    fn services(self) -> ReportServices {
        ReportServices::new(
            ReportPorts {
                reports: Arc::new(self.reports),
                runs: Arc::new(self.runs),
                run_writes: Arc::new(self.run_writes),
                events: Arc::new(self.events),
                evaluations: Arc::new(self.evaluations),
                jobs: Arc::new(self.jobs),
                llm: Arc::new(self.llm),
                cipher: Arc::new(MockKeyCipher::new()),
                signer: Arc::new(self.signer),
                delivery: Arc::new(self.delivery),
            },
            ReportConfig {
                public_url: "https://llma.example".into(),
                targets: TargetPolicy::default(),
                delivery_retry_base: Duration::from_secs(30),
                llm_timeout: Duration::from_secs(5),
            },
        )
    }
}

/// Runs one tick over one report with what the counts answer; returns the unique keys
/// of the jobs enqueued.
async fn tick(due: DueCandidate) -> Vec<String> {
    let mut mocks = Mocks::default();
    let looked_at =
        ScheduleCandidate { report: due.report.clone(), automatic_runs_last_day: due.automatic_runs_last_day };
    mocks.runs.expect_schedule_candidates().returning(move |_| Ok(vec![looked_at.clone()]));
    mocks.events.expect_new_results().returning(move |asked| Ok(vec![due.new_results; asked.len()]));
    mocks.events.expect_counts_of_periods().returning(move |asked| Ok(vec![due.window; asked.len()]));
    let enqueued = Arc::new(Mutex::new(Vec::new()));
    let kept = enqueued.clone();
    mocks.jobs.expect_enqueue().returning(move |jobs| {
        kept.lock().unwrap().extend(jobs.iter().map(|j| j.unique_key.clone().unwrap()));
        Ok(jobs.len() as u64)
    });
    mocks.services().scheduler.tick(now()).await.unwrap();
    enqueued.lock().unwrap().clone()
}

#[tokio::test]
async fn the_tick_counts_only_what_its_open_gates_ask_once_per_question() {
    let every_n = report(Frequency::EveryN);
    let mut same_question = report(Frequency::EveryN);
    same_question.id = ReportId(uuid::Uuid::from_u128(77));
    let mut cooling = report(Frequency::EveryN);
    cooling.id = ReportId(uuid::Uuid::from_u128(78));
    cooling.last_delivered_at = Some(now() - Span::minutes(5));
    let mut scheduled = report(Frequency::Scheduled);
    scheduled.next_delivery_date = Some(now() - Span::seconds(1));
    let looked_at: Vec<ScheduleCandidate> = [every_n, same_question, cooling, scheduled]
        .into_iter()
        .map(|report| ScheduleCandidate { report, automatic_runs_last_day: 0 })
        .collect();
    let mut mocks = Mocks::default();
    mocks.runs.expect_schedule_candidates().returning(move |_| Ok(looked_at.clone()));
    mocks.events.expect_new_results().times(1).returning(|asked| {
        assert_eq!(
            asked.len(),
            1,
            "two reports with the same question share one count; the cooling one is not counted"
        );
        assert_eq!(asked[0].up_to, 100);
        Ok(vec![100])
    });
    mocks.events.expect_counts_of_periods().never();
    let jobs = mocks.services().scheduler.due_jobs(now()).await.unwrap();
    assert_eq!(jobs.len(), 3, "both every_n reports and the scheduled one");
}

#[tokio::test]
async fn the_tick_runs_what_is_due_under_its_gates() {
    let mut scheduled = report(Frequency::Scheduled);
    scheduled.next_delivery_date = Some(now() - Span::seconds(1));
    let keys = tick(candidate(scheduled.clone())).await;
    assert_eq!(keys, vec![schedule::run_key(scheduled.id.0, Trigger::Scheduled, scheduled.next_delivery_date)]);

    let mut not_yet = scheduled.clone();
    not_yet.next_delivery_date = Some(now() + Span::seconds(1));
    assert!(tick(candidate(not_yet)).await.is_empty());

    let capped = DueCandidate { automatic_runs_last_day: 10, ..candidate(scheduled.clone()) };
    assert!(tick(capped).await.is_empty(), "the daily cap holds");

    let every_n = report(Frequency::EveryN);
    assert!(tick(DueCandidate { new_results: 99, ..candidate(every_n.clone()) }).await.is_empty());
    assert_eq!(tick(DueCandidate { new_results: 100, ..candidate(every_n.clone()) }).await.len(), 1);
    let mut cooling = every_n.clone();
    cooling.last_delivered_at = Some(now() - Span::minutes(59));
    assert!(tick(DueCandidate { new_results: 500, ..candidate(cooling) }).await.is_empty(), "cooldown");

    let mut alert = report(Frequency::Alert);
    alert.alert_condition =
        Some(AlertCondition { operator: AlertOperator::Lt, pass_rate: 80.0, min_runs: 10, window_minutes: 60 });
    let firing = ResultCounts { pass: 7, fail: 3, na: 0 };
    assert_eq!(tick(DueCandidate { window: firing, ..candidate(alert.clone()) }).await.len(), 1);
    let calm = ResultCounts { pass: 9, fail: 1, na: 0 };
    assert!(tick(DueCandidate { window: calm, ..candidate(alert.clone()) }).await.is_empty());

    let mut disabled = scheduled;
    disabled.enabled = false;
    assert!(tick(candidate(disabled)).await.is_empty());
}

fn claimed(kind: JobKind, payload: Value, attempts: u32) -> ClaimedJob {
    ClaimedJob {
        lease: Lease { job: crate::jobs::JobId(uuid::Uuid::from_u128(1)), token: uuid::Uuid::from_u128(2) },
        project: PROJECT,
        kind: Some(kind),
        payload,
        attachment: None,
        attempts,
        max_attempts: MAX_DELIVERY_ATTEMPTS,
    }
}

#[tokio::test]
async fn a_failing_llm_gives_the_fallback_and_the_run_is_still_stored() {
    let mut mocks = Mocks::default();
    let stored = report(Frequency::EveryN);
    let found = stored.clone();
    mocks.reports.expect_find().returning(move |_, _| Ok(Some(found.clone())));
    mocks.evaluations.expect_find().returning(|_, _| Ok(Some(crate::evaluation::test_support::evaluation())));
    mocks.events.expect_nth_newest().returning(|_, _, _, _| Ok(Some(now() - Span::hours(2))));
    mocks.events.expect_counts().returning(|_, _, _| Ok(ResultCounts { pass: 3, fail: 1, na: 0 }));
    mocks.events.expect_trend().returning(|_, _, _, _| Ok(vec![]));
    mocks.events.expect_sample().returning(|_, _, _, _| Ok(vec![]));
    mocks.llm.expect_run().withf(|_, request| request.purpose == LlmPurpose::Report).returning(|_, _| {
        Err(LlmError::Failed { error: CompletionError::Timeout, paid_by: PaidBy::Operator, model: "gpt-5-mini".into() })
    });
    let saved: Arc<Mutex<Option<NewRun>>> = Arc::default();
    let keep = saved.clone();
    mocks.run_writes.expect_store_run().returning(move |_, run| {
        *keep.lock().unwrap() = Some(run.clone());
        Ok(true)
    });
    let services = mocks.services();
    let payload = json!({"report": stored.id.0, "key": "k", "trigger": "manual"});
    assert_eq!(services.runs.run(&claimed(JobKind::ReportRun, payload, 1)).await, JobOutcome::Finished);
    let run = saved.lock().unwrap().clone().expect("the run was stored");
    assert_eq!(run.run.content.title, "Automated fallback report for Politeness");
    assert_eq!(run.run.content.metrics.pass_rate, 75.0);
    assert!(run.run.metadata["fallback_reason"].as_str().unwrap().contains("did not answer in time"));
    assert_eq!(run.run.metadata["model"], "gpt-5-mini");
    assert_eq!(run.run.metadata["trigger"], "manual");
    assert!(run.advance.is_none(), "a manual run moves nothing");
    assert_eq!(run.run_key, "k");
}

pub(in crate::reports) fn stored_run() -> ReportRun {
    let period = Period { start: now() - Span::days(1), end: now() };
    ReportRun {
        id: ReportRunId(uuid::Uuid::from_u128(0xAB)),
        project: PROJECT,
        report: ReportId(uuid::Uuid::from_u128(0x5E)),
        content: content::fallback(
            "Politeness",
            ReportMetrics::of(ResultCounts::default(), ResultCounts::default(), period),
            Trigger::Manual,
        ),
        metadata: json!({"trigger": "manual"}),
        period,
        delivery_status: DeliveryStatus::Pending,
        delivery_errors: vec![],
        trend: vec![],
        created_at: now(),
    }
}

fn delivery_mocks(state: DeliveryState) -> Mocks {
    let mut mocks = Mocks::default();
    mocks.runs.expect_run().returning(|_| Ok(Some(stored_run())));
    mocks.runs.expect_delivery().returning(move |_, _, recipient| {
        Ok(Some(StoredDelivery {
            record: DeliveryRecord { target_index: 0, recipient: recipient.to_owned(), state, error: None },
            target: DeliveryTarget::Email { addresses: vec![recipient.to_owned()] },
        }))
    });
    mocks.reports.expect_find().returning(|_, _| Ok(None));
    mocks.signer.expect_sign().returning(|_| "ab".into());
    mocks
}

/// How a delivery was finished: its state and error line.
type FinishedDelivery = (DeliveryState, Option<String>);

fn delivery_payload() -> Value {
    json!({"run": stored_run().id.0, "target_index": 0, "recipient": "a@example.com"})
}

#[tokio::test]
async fn a_delivery_that_was_sent_is_never_sent_again() {
    let mut mocks = delivery_mocks(DeliveryState::Sent);
    mocks.delivery.expect_send().never();
    let outcome = mocks.services().deliveries.run(&claimed(JobKind::ReportDelivery, delivery_payload(), 2)).await;
    assert_eq!(outcome, JobOutcome::Complete);
}

#[tokio::test]
async fn failed_sends_wait_base_times_four_then_end_as_an_error_line() {
    for (attempt, expected) in [(1, Some(30)), (2, Some(120)), (3, Some(480)), (4, None)] {
        let mut mocks = delivery_mocks(DeliveryState::Pending);
        mocks.delivery.expect_send().returning(|_, _, _| Err(SendFailure::retry("connection refused")));
        let finished: Arc<Mutex<Option<FinishedDelivery>>> = Arc::default();
        let keep = finished.clone();
        mocks.run_writes.expect_finish_delivery().returning(move |_, ended, _| {
            let delivery = &ended.record;
            *keep.lock().unwrap() = Some((delivery.state, delivery.error.clone()));
            Ok(true)
        });
        let outcome =
            mocks.services().deliveries.run(&claimed(JobKind::ReportDelivery, delivery_payload(), attempt)).await;
        match expected {
            Some(seconds) => {
                assert_eq!(
                    outcome,
                    JobOutcome::RetryAfter(
                        Duration::from_secs(seconds),
                        "Failed to send email to a@example.com: connection refused".into()
                    )
                );
                assert!(finished.lock().unwrap().is_none());
            }
            None => {
                assert_eq!(outcome, JobOutcome::Finished);
                let (state, error) = finished.lock().unwrap().clone().unwrap();
                assert_eq!(state, DeliveryState::Failed);
                assert_eq!(error.as_deref(), Some("Failed to send email to a@example.com: connection refused"));
            }
        }
    }
}

#[tokio::test]
async fn giving_up_on_a_delivery_ends_it_failed_with_the_reason_in_the_jobs_transaction() {
    let mut mocks = delivery_mocks(DeliveryState::Pending);
    mocks.delivery.expect_send().never();
    mocks.run_writes.expect_finish_delivery().times(1).returning(|_, ended, end| {
        let delivery = &ended.record;
        assert_eq!((delivery.target_index, delivery.state), (0, DeliveryState::Failed));
        assert_eq!(delivery.error.as_deref(), Some("Failed to deliver to target 0: gave up after 4 attempts"));
        assert_eq!(end, &JobEnd::Fail("gave up after 4 attempts".into()));
        Ok(true)
    });
    let job = claimed(JobKind::ReportDelivery, delivery_payload(), 5);

    let outcome = mocks.services().deliveries.give_up(&job, "gave up after 4 attempts".into()).await;

    assert_eq!(outcome, JobOutcome::Finished);
}

#[tokio::test]
async fn giving_up_on_a_report_run_just_fails_the_job() {
    let mut mocks = delivery_mocks(DeliveryState::Pending);
    mocks.run_writes.expect_finish_delivery().never();
    let job = claimed(JobKind::ReportRun, json!({}), 5);

    let outcome = mocks.services().deliveries.give_up(&job, "gave up".into()).await;

    assert_eq!(outcome, JobOutcome::Fail("gave up".into()));
}

#[tokio::test]
async fn a_permanent_failure_is_not_retried() {
    let mut mocks = delivery_mocks(DeliveryState::Pending);
    mocks.delivery.expect_send().times(1).returning(|_, _, _| Err(SendFailure::permanent("550 no such user")));
    mocks.run_writes.expect_finish_delivery().times(1).returning(|_, ended, _| {
        let delivery = &ended.record;
        assert_eq!(delivery.state, DeliveryState::Failed);
        Ok(true)
    });
    let outcome = mocks.services().deliveries.run(&claimed(JobKind::ReportDelivery, delivery_payload(), 1)).await;
    assert_eq!(outcome, JobOutcome::Finished);
}

#[tokio::test]
async fn the_page_needs_a_valid_unexpired_signature() {
    let run = stored_run();
    let expires = (run.created_at + LINK_LIFETIME).timestamp();
    let mut mocks = Mocks::default();
    let message = format!("{}.{expires}", run.id.0);
    mocks.signer.expect_verify().returning(move |m, s| m == message && s == "good");
    mocks.signer.expect_sign().returning(|_| "good".into());
    mocks.runs.expect_run().returning(|_| Ok(Some(stored_run())));
    mocks.reports.expect_find().returning(|_, _| Ok(None));
    let services = mocks.services();
    let id = run.id.0.to_string();
    let exp = expires.to_string();
    assert!(services.pages.page(&id, Some(&exp), Some("good"), now()).await.is_ok());
    assert!(matches!(services.pages.page(&id, Some(&exp), Some("bad"), now()).await, Err(ReportError::NotFound)));
    assert!(matches!(services.pages.page(&id, None, Some("good"), now()).await, Err(ReportError::NotFound)));
    assert!(matches!(services.pages.page("nope", Some(&exp), Some("good"), now()).await, Err(ReportError::NotFound)));
    let later = run.created_at + LINK_LIFETIME + Span::seconds(1);
    assert!(
        matches!(services.pages.page(&id, Some(&exp), Some("good"), later).await, Err(ReportError::NotFound)),
        "expired"
    );
    let url = services.pages.share_url(&run);
    assert_eq!(url, format!("https://llma.example/reports/runs/{id}?expires={expires}&signature=good"));
}

#[tokio::test]
async fn a_run_with_nothing_to_do_leaves_the_job_to_the_worker_and_stores_nothing() {
    for (enabled, anchor) in [(false, None), (true, Some(now() - Span::days(1)))] {
        let mut mocks = Mocks::default();
        let stored = Report { enabled, last_delivered_at: Some(now()), ..report(Frequency::EveryN) };
        let found = stored.clone();
        mocks.reports.expect_find().returning(move |_, _| Ok(Some(found.clone())));
        mocks.run_writes.expect_store_run().never();
        let payload = json!({"report": stored.id.0, "key": "k", "trigger": "every_n", "anchor": anchor});
        let outcome = mocks.services().runs.run(&claimed(JobKind::ReportRun, payload, 1)).await;
        assert_eq!(outcome, JobOutcome::Complete, "enabled {enabled}, anchor {anchor:?}");
    }
}
