//! Unit tests of the judge use cases, with every port mocked (the LLM port's own choice
//! of who pays is tested with it): how failures end a job and stop evaluations, what a
//! result event carries, manual runs and the results query's validation.

use crate::invalid::FieldError;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeZone, Utc};
use mockall::predicate::eq;
use serde_json::{Value, json};

use super::*;
use crate::ProviderKeyId;
use crate::evaluation::{EvaluationState, MockEvaluationRepository};
use crate::jobs::{JobId, Lease, MockJobQueue, NewJob};
use crate::judge::{
    CodeJudgePayload, MAX_CODE_GENERATIONS_PER_JOB, MockEvaluationResultsStore, MockJudgeStore, ResultsInput,
    gather_code_jobs, parse_results_query,
};
use crate::llm::{LlmAnswer, MockLlm};
use crate::provider_key::Provider;
use crate::unit_of_work::MockUnitOfWork;
use crate::unit_of_work::testing::MockTransaction;

const PROJECT: ProjectId = ProjectId(7);

fn evaluation_id() -> EvaluationId {
    EvaluationId(Uuid::from_u128(0xE1))
}

fn key_id() -> ProviderKeyId {
    ProviderKeyId(Uuid::from_u128(0xC1))
}

fn generation_id() -> Uuid {
    Uuid::from_u128(0x6E)
}

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 4, 12, 0, 0).unwrap()
}

fn evaluation(configuration: Option<(Provider, &str, Option<ProviderKeyId>)>) -> Evaluation {
    crate::evaluation::test_support::configured(PROJECT, configuration)
}

fn generation() -> Generation {
    let properties = json!({
        "$ai_trace_id": "trace-1",
        "$ai_input": [{"role": "user", "content": "Hi"}],
        "$ai_output_choices": [{"role": "assistant", "content": [{"type": "text", "text": "Hello there!"}]}],
        "env": "prod"
    });
    Generation {
        uuid: generation_id(),
        event: "$ai_generation".into(),
        distinct_id: "user-9".into(),
        timestamp: at(),
        properties: properties.as_object().unwrap().clone(),
    }
}

fn claimed(manual: bool) -> ClaimedJob {
    let payload = JudgePayload {
        evaluations: vec![evaluation_id()],
        generation: generation_id(),
        generation_timestamp: at(),
        manual,
    };
    ClaimedJob {
        lease: Lease { job: JobId(Uuid::from_u128(0x10B)), token: Uuid::from_u128(0x70) },
        project: PROJECT,
        kind: Some(JobKind::Judge),
        payload: serde_json::to_value(payload).unwrap(),
        attachment: None,
        attempts: 1,
        max_attempts: 3,
    }
}

fn other_evaluation_id() -> EvaluationId {
    EvaluationId(Uuid::from_u128(0xE2))
}

/// An automatic job judging the generation with both evaluations, on its `attempts`th try.
fn claimed_for_both(attempts: u32) -> ClaimedJob {
    let payload = JudgePayload {
        evaluations: vec![evaluation_id(), other_evaluation_id()],
        generation: generation_id(),
        generation_timestamp: at(),
        manual: false,
    };
    ClaimedJob { payload: serde_json::to_value(payload).unwrap(), attempts, ..claimed(false) }
}

/// The judge's answer as the LLM port gives it, paid by `paid_by`.
fn answer(verdict: Value, applicable: bool, paid_by: PaidBy) -> LlmAnswer {
    LlmAnswer {
        value: json!({"verdict": verdict, "reasoning": "Friendly.", "applicable": applicable}),
        paid_by,
        provider: Provider::Openai,
        model: "gpt-5".into(),
    }
}

fn own_key() -> PaidBy {
    PaidBy::OwnKey(key_id())
}

fn failed(error: CompletionError, paid_by: PaidBy) -> LlmError {
    LlmError::Failed { error, paid_by, model: "gpt-5".into() }
}

/// The ends one transaction wrote.
type JobEnds = Vec<(Lease, JobEnd)>;

struct Mocks {
    llm: MockLlm,
    code: crate::code::MockCodeEvaluator,
    evaluations: MockEvaluationRepository,
    store: MockJudgeStore,
    results: MockEvaluationResultsStore,
    jobs: MockJobQueue,
    /// Each transaction stores results and writes the job's end.
    unit_of_work: MockUnitOfWork,
    stored: Arc<Mutex<Vec<crate::ingestion::IncomingEvent>>>,
    /// The job end written with each stored result.
    ends: Arc<Mutex<Vec<Option<JobEnd>>>>,
    /// The ends written by batches, one list per transaction.
    batch_ends: Arc<Mutex<Vec<JobEnds>>>,
}

impl Mocks {
    /// The evaluation is found, the generation is stored, results stored (and kept for
    /// inspection).
    fn new(evaluation: Evaluation) -> Self {
        let mut mocks = Mocks {
            llm: MockLlm::new(),
            code: {
                let mut code = crate::code::MockCodeEvaluator::new();
                code.expect_reads().returning(|_| crate::code::CodeReads::everything());
                code
            },
            evaluations: MockEvaluationRepository::new(),
            store: MockJudgeStore::new(),
            results: MockEvaluationResultsStore::new(),
            jobs: MockJobQueue::new(),
            unit_of_work: MockUnitOfWork::new(),
            stored: Arc::default(),
            ends: Arc::default(),
            batch_ends: Arc::default(),
        };
        // any id asked for is this evaluation under that id
        mocks.evaluations.expect_find().returning(move |_, id| Ok(Some(Evaluation { id, ..evaluation.clone() })));
        mocks.store.expect_event().returning(|_, _, _| Ok(Some(generation())));
        let (stored, ends, batch_ends) = (mocks.stored.clone(), mocks.ends.clone(), mocks.batch_ends.clone());
        mocks.unit_of_work.expect_begin().returning(move || {
            let mut tx = MockTransaction::default();
            let ends = ends.clone();
            tx.jobs.expect_end().returning(move |_, end| {
                ends.lock().unwrap().push(end);
                Ok(true)
            });
            let batch_ends = batch_ends.clone();
            tx.jobs.expect_end_each().returning(move |ended| {
                batch_ends.lock().unwrap().push(ended.to_vec());
                Ok(ended.iter().map(|(lease, _)| lease.job).collect())
            });
            let stored_by_judge = stored.clone();
            tx.events.expect_insert().returning(move |_, events| {
                stored_by_judge.lock().unwrap().extend(events.iter().cloned());
                Ok(events.iter().map(|e| e.uuid).collect())
            });
            // A batch of code judgements' results, expected new.
            let stored = stored.clone();
            tx.events.expect_insert_fresh().returning(move |_, events| {
                stored.lock().unwrap().extend(events.iter().cloned());
                Ok(events.iter().map(|e| e.uuid).collect())
            });
            Ok(Box::new(tx))
        });
        mocks
    }

    /// Every judge call gets what `answer` gives.
    fn answers(mut self, answer: impl Fn() -> Result<LlmAnswer, LlmError> + Send + Sync + 'static) -> Self {
        self.llm.expect_run().returning(move |_, request| {
            assert_eq!(request.purpose, LlmPurpose::Judge);
            answer()
        });
        self
    }

    /// The LLM port is never asked.
    fn no_call(mut self) -> Self {
        self.llm.expect_run().never();
        self
    }

    /// Every generation asked for is stored, as [`generation_numbered`] by its uuid.
    fn numbered_generations_stored(mut self) -> Self {
        self.store
            .expect_events()
            .returning(|_, wanted| Ok(wanted.iter().map(|(u, _)| generation_numbered(u.as_u128())).collect()));
        self
    }

    fn service(self) -> (JudgeService, Arc<Mutex<Vec<crate::ingestion::IncomingEvent>>>) {
        let service = JudgeService::new(
            JudgePorts {
                evaluations: Arc::new(self.evaluations),
                store: Arc::new(self.store),
                results: Arc::new(self.results),
                jobs: Arc::new(self.jobs),
                llm: Arc::new(self.llm),
                unit_of_work: Arc::new(self.unit_of_work),
                code: Arc::new(self.code),
            },
            JudgeConfig {
                llm_timeout: Duration::from_secs(30),
                retention: crate::ingestion::EventRetention::forever(),
            },
        );
        (service, self.stored)
    }
}

fn configured() -> Evaluation {
    evaluation(Some((Provider::Openai, "gpt-5", Some(key_id()))))
}

#[tokio::test]
async fn the_judge_asks_with_the_evaluation_and_the_generation_and_stores_an_ai_evaluation_event() {
    let mut mocks = Mocks::new(configured());
    mocks.llm.expect_run().times(1).returning(|evaluation, request| {
        assert_eq!(evaluation.id, evaluation_id());
        assert!(request.prompt.user.contains("Pass when the answer is polite."), "{}", request.prompt.user);
        assert!(request.prompt.user.contains("Hello there!"), "{}", request.prompt.user);
        let remaining = request.deadline.saturating_duration_since(Instant::now());
        assert!(remaining <= Duration::from_secs(30) && remaining > Duration::from_secs(25), "{remaining:?}");
        Ok(answer(json!(true), true, own_key()))
    });
    let (service, stored) = mocks.service();

    assert_eq!(service.run(&claimed(false)).await, JobOutcome::Finished);

    let stored = stored.lock().unwrap();
    let event = &stored[0];
    assert_eq!(event.event.as_str(), "$ai_evaluation");
    assert_eq!(event.distinct_id, "user-9");
    let p = &event.properties;
    assert_eq!(p["$ai_evaluation_id"], json!(evaluation_id().to_string()));
    assert_eq!(p["$ai_evaluation_name"], json!("Politeness"));
    assert_eq!(p["$ai_evaluation_result"], json!(true));
    assert_eq!(p["$ai_evaluation_applicable"], json!(true));
    assert_eq!(p["$ai_evaluation_reasoning"], json!("Friendly."));
    assert_eq!(p["$ai_target_event_id"], json!(generation_id().to_string()));
    assert_eq!(p["$ai_trace_id"], json!("trace-1"));
    assert_eq!(p["$ai_evaluation_key_type"], json!("byok"));
    assert_eq!(p["$ai_evaluation_key_id"], json!(key_id().to_string()));
    assert_eq!(p["$ai_evaluation_manual"], json!(false));
    assert_eq!(
        event.uuid,
        result_event_id(&serde_json::from_value(claimed(false).payload).unwrap(), evaluation_id(), Uuid::nil())
    );
}

#[tokio::test]
async fn not_applicable_results_carry_no_result_property() {
    let mocks = Mocks::new(configured()).answers(|| Ok(answer(json!(false), false, own_key())));
    let (service, stored) = mocks.service();

    service.run(&claimed(true)).await;

    let stored = stored.lock().unwrap();
    assert!(!stored[0].properties.contains_key("$ai_evaluation_result"));
    assert_eq!(stored[0].properties["$ai_evaluation_applicable"], json!(false));
    assert_eq!(stored[0].properties["$ai_evaluation_manual"], json!(true));
}

#[tokio::test]
async fn a_verdict_on_trial_credits_is_marked_posthog_without_a_key() {
    let mocks = Mocks::new(evaluation(None)).answers(|| Ok(answer(json!(true), true, PaidBy::Trial)));
    let (service, stored) = mocks.service();

    assert_eq!(service.run(&claimed(false)).await, JobOutcome::Finished);
    let stored = stored.lock().unwrap();
    assert_eq!(stored[0].properties["$ai_evaluation_key_type"], json!("posthog"));
    assert_eq!(stored[0].properties["$ai_evaluation_key_id"], json!(null));
}

#[tokio::test]
async fn a_lease_lost_before_the_results_refunds_the_trial_credits_they_took() {
    let mut mocks = Mocks::new(evaluation(None)).answers(|| Ok(answer(json!(true), true, PaidBy::Trial)));
    mocks.unit_of_work.checkpoint();
    mocks.unit_of_work.expect_begin().returning(|| {
        let mut tx = MockTransaction::default();
        tx.events.expect_insert().returning(|_, events| Ok(events.iter().map(|e| e.uuid).collect()));
        tx.jobs.expect_end().returning(|_, _| Ok(false));
        Ok(Box::new(tx))
    });
    mocks.llm.expect_refund().with(eq(PROJECT), eq(PaidBy::Trial)).times(2).returning(|_, _| Ok(()));
    let (service, _) = mocks.service();

    assert_eq!(service.run(&claimed_for_both(1)).await, JobOutcome::Finished);
}

#[tokio::test]
async fn a_failed_call_is_retried_and_stores_nothing() {
    let mocks =
        Mocks::new(evaluation(None)).answers(|| Err(failed(CompletionError::Unavailable("503".into()), PaidBy::Trial)));
    let (service, stored) = mocks.service();

    assert!(matches!(service.run(&claimed(false)).await, JobOutcome::Retry(_)));
    assert!(stored.lock().unwrap().is_empty());
}

#[tokio::test]
async fn who_may_not_pay_stops_the_evaluations_concerned() {
    for (error, stop, reason) in [
        ((|| LlmError::TrialsUsedUp) as fn() -> LlmError, JudgeStop::WithoutKey, StatusReason::TrialLimitReached),
        (|| LlmError::KeyInvalid(key_id()), JudgeStop::UsingKey(key_id()), StatusReason::ProviderKeyInvalid),
        (|| LlmError::ModelNotAllowed, JudgeStop::One(evaluation_id()), StatusReason::ModelNotAllowed),
    ] {
        let mut mocks = Mocks::new(evaluation(None)).answers(move || Err(error()));
        mocks
            .evaluations
            .expect_stop_judging()
            .with(eq(PROJECT), eq(stop), eq(reason), eq(None))
            .times(1)
            .returning(|_, _, _, _| Ok(1));
        let (service, stored) = mocks.service();

        let outcome = service.run(&claimed(false)).await;
        assert!(matches!(&outcome, JobOutcome::Fail(_)), "{stop:?}: {outcome:?}");
        assert!(stored.lock().unwrap().is_empty());
    }
}

#[tokio::test]
async fn a_rejected_key_stops_its_evaluations_and_is_not_retried() {
    let mut mocks = Mocks::new(configured()).answers(|| Err(failed(CompletionError::KeyRejected, own_key())));
    let stops = Arc::new(Mutex::new(Vec::new()));
    let seen = stops.clone();
    mocks.evaluations.expect_stop_judging().returning(move |_, stop, reason, _| {
        seen.lock().unwrap().push((stop, reason));
        Ok(1)
    });
    let (service, stored) = mocks.service();

    assert!(matches!(service.run(&claimed(false)).await, JobOutcome::Fail(_)));
    assert!(stored.lock().unwrap().is_empty(), "no result is stored");
    assert!(stops.lock().unwrap().contains(&(JudgeStop::UsingKey(key_id()), StatusReason::ProviderKeyInvalid)));
}

#[tokio::test]
async fn garbage_from_the_model_fails_the_job_invents_no_verdict_and_refunds() {
    let mut mocks = Mocks::new(evaluation(None))
        .answers(|| Ok(LlmAnswer { value: json!({"verdict": "maybe"}), ..answer(json!(true), true, PaidBy::Trial) }));
    mocks.llm.expect_refund().with(eq(PROJECT), eq(PaidBy::Trial)).times(1).returning(|_, _| Ok(()));
    let (service, stored) = mocks.service();

    assert!(matches!(service.run(&claimed(false)).await, JobOutcome::Fail(_)));
    assert!(stored.lock().unwrap().is_empty());
}

#[tokio::test]
async fn rate_limits_and_timeouts_are_retried() {
    for error in [CompletionError::RateLimited { retry_after: None }, CompletionError::Timeout] {
        let mocks = Mocks::new(configured()).answers(move || Err(failed(error.clone(), own_key())));
        let (service, _) = mocks.service();
        assert!(matches!(service.run(&claimed(false)).await, JobOutcome::Retry(_)));
    }
}

#[tokio::test]
async fn an_automatic_job_of_a_disabled_evaluation_ends_without_a_call() {
    let mut disabled = evaluation(None);
    disabled.state = EvaluationState::Paused;
    let (service, _) = Mocks::new(disabled.clone()).no_call().service();
    assert!(matches!(service.run(&claimed(false)).await, JobOutcome::Fail(_)));

    let mocks = Mocks::new(disabled).answers(|| Ok(answer(json!(true), true, PaidBy::Trial)));
    let (service, stored) = mocks.service();
    assert_eq!(service.run(&claimed(true)).await, JobOutcome::Finished, "a manual run judges anyway");
    assert_eq!(stored.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn one_job_judges_with_each_of_its_evaluations_and_ends_with_their_results() {
    let mocks = Mocks::new(configured()).answers(|| Ok(answer(json!(true), true, own_key())));
    let ends = mocks.ends.clone();
    let (service, stored) = mocks.service();
    let job = claimed_for_both(1);

    assert_eq!(service.run(&job).await, JobOutcome::Finished);
    let payload: JudgePayload = serde_json::from_value(job.payload.clone()).unwrap();
    let stored = stored.lock().unwrap();
    let ids: Vec<Uuid> = stored.iter().map(|e| e.uuid).collect();
    let expected: Vec<Uuid> =
        payload.evaluations.iter().map(|e| result_event_id(&payload, *e, job.lease.job.0)).collect();
    assert_eq!(ids, expected);
    let judged_by: Vec<&Value> = stored.iter().map(|e| &e.properties["$ai_evaluation_id"]).collect();
    assert_eq!(judged_by, [&json!(evaluation_id().to_string()), &json!(other_evaluation_id().to_string())]);
    assert_eq!(*ends.lock().unwrap(), vec![Some(JobEnd::Complete)], "results and the job's end in one write");
}

#[tokio::test]
async fn a_retried_job_judges_only_the_evaluations_without_a_stored_result() {
    let mut mocks = Mocks::new(configured());
    let job = claimed_for_both(2);
    let payload: JudgePayload = serde_json::from_value(job.payload.clone()).unwrap();
    let done = result_event_id(&payload, evaluation_id(), job.lease.job.0);
    mocks.store.expect_stored_events().times(1).returning(move |_, _| Ok(vec![done]));
    mocks.llm.expect_run().times(1).returning(|_, _| Ok(answer(json!(true), true, own_key())));
    let (service, stored) = mocks.service();

    assert_eq!(service.run(&job).await, JobOutcome::Finished);
    let stored = stored.lock().unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].properties["$ai_evaluation_id"], json!(other_evaluation_id().to_string()));
}

#[tokio::test]
async fn a_passing_failure_of_one_evaluation_keeps_the_others_verdict_and_retries_the_job() {
    let calls = Arc::new(Mutex::new(0));
    let mocks = Mocks::new(configured()).answers(move || {
        let mut calls = calls.lock().unwrap();
        *calls += 1;
        match *calls {
            1 => Ok(answer(json!(true), true, own_key())),
            _ => Err(failed(CompletionError::RateLimited { retry_after: None }, own_key())),
        }
    });
    let ends = mocks.ends.clone();
    let (service, stored) = mocks.service();

    let outcome = service.run(&claimed_for_both(1)).await;
    let JobOutcome::Retry(reason) = outcome else { panic!("expected a retry, got {outcome:?}") };
    assert!(reason.starts_with("evaluation "), "the reason names the evaluation: {reason}");
    assert_eq!(stored.lock().unwrap().len(), 1, "the verdict already paid for is kept");
    assert_eq!(*ends.lock().unwrap(), vec![None], "the job stays leased for the worker's retry");
}

fn manual(evaluation: EvaluationId, target: Uuid) -> ManualRunCommand {
    ManualRunCommand { evaluation, target_event: target, at: None, event: None, distinct_id: None }
}

#[tokio::test]
async fn a_manual_run_queues_a_job_that_is_never_deduplicated() {
    let mut mocks = Mocks::new(evaluation(None));
    mocks
        .jobs
        .expect_enqueue()
        .withf(|jobs| jobs.len() == 1 && jobs[0].unique_key.is_none() && jobs[0].payload["manual"] == json!(true))
        .times(1)
        .returning(|_| Ok(1));
    let (service, _) = mocks.service();

    let run = service.manual_run(PROJECT, manual(evaluation_id(), generation_id())).await;
    let run = run.unwrap();
    assert_eq!((run.evaluation, run.target_event_id), (evaluation_id(), generation_id()));
}

#[tokio::test]
async fn a_manual_run_finds_the_event_by_its_name() {
    let (service, _) = Mocks::new(evaluation(None)).service();
    let wrong_event = ManualRunCommand { event: Some("$ai_span".into()), ..manual(evaluation_id(), generation_id()) };
    assert!(matches!(service.manual_run(PROJECT, wrong_event).await, Err(ManualRunError::EventNotFound(_))));
}

#[test]
fn results_queries_default_to_the_last_week_by_day_and_refuse_bad_input() {
    let now = at();
    let query = parse_results_query(
        ResultsInput { evaluation_id: Some(evaluation_id().to_string()), ..Default::default() },
        now,
    )
    .unwrap();
    assert_eq!((query.date_to, query.date_from, query.interval), (now, now - chrono::Duration::days(7), Interval::Day));

    let base = || ResultsInput { evaluation_id: Some(evaluation_id().to_string()), ..Default::default() };
    for (input, field) in [
        (ResultsInput::default(), "evaluation_id"),
        (ResultsInput { date_from: Some("soon".into()), ..base() }, "date_from"),
        (
            ResultsInput { date_from: Some("2026-03-05".into()), date_to: Some("2026-03-01".into()), ..base() },
            "date_from",
        ),
        (ResultsInput { interval: Some("month".into()), ..base() }, "interval"),
        (ResultsInput { breakdown: Some("x".repeat(201)), ..base() }, "breakdown"),
        (
            ResultsInput {
                date_from: Some("2026-01-01".into()),
                date_to: Some("2026-03-01".into()),
                interval: Some("hour".into()),
                ..base()
            },
            "interval",
        ),
    ] {
        match parse_results_query(input, now) {
            Err(FieldError { field: named, .. }) => assert_eq!(named, field),
            other => panic!("{field}: {other:?}"),
        }
    }
}

/// The claimed job on its last attempt.
fn last_attempt() -> ClaimedJob {
    ClaimedJob { attempts: 3, ..claimed(false) }
}

#[tokio::test]
async fn an_hour_of_rate_limited_jobs_stops_the_evaluation_and_less_only_fails_the_job() {
    let limited = || Err(failed(CompletionError::RateLimited { retry_after: None }, own_key()));
    for (limited_for, stops) in [(chrono::Duration::minutes(61), true), (chrono::Duration::minutes(5), false)] {
        let mut mocks = Mocks::new(configured()).answers(limited);
        mocks.store.expect_stored_events().returning(|_, _| Ok(Vec::new()));
        let since = Utc::now() - limited_for;
        mocks
            .evaluations
            .expect_rate_limited_since()
            .withf(|_, id, at| *id == evaluation_id() && at.is_some())
            .times(1)
            .returning(move |_, _, _| Ok(Some(since)));
        mocks
            .evaluations
            .expect_stop_judging()
            .withf(|_, stop, reason, detail| {
                *stop == JudgeStop::One(evaluation_id())
                    && *reason == StatusReason::RateLimited
                    && detail.as_deref().is_some_and(|d| d.contains("for an hour"))
            })
            .times(usize::from(stops))
            .returning(|_, _, _, _| Ok(1));
        let (service, _) = mocks.service();

        let outcome = service.run(&last_attempt()).await;
        if stops {
            assert!(matches!(&outcome, JobOutcome::Fail(_)), "{outcome:?}");
        } else {
            assert!(matches!(&outcome, JobOutcome::Retry(_)), "the worker ends it after its attempts: {outcome:?}");
        }
    }
}

#[tokio::test]
async fn a_verdict_forgets_that_the_evaluation_was_rate_limited() {
    let rate_limited = Evaluation { rate_limited_since: Some(Utc::now()), ..configured() };
    let mut mocks = Mocks::new(rate_limited).answers(|| Ok(answer(json!(true), true, own_key())));
    mocks.evaluations.expect_rate_limited_since().withf(|_, _, at| at.is_none()).times(1).returning(|_, _, _| Ok(None));
    let (service, stored) = mocks.service();
    assert_eq!(service.run(&claimed(false)).await, JobOutcome::Finished);
    assert_eq!(stored.lock().unwrap().len(), 1);
}

fn hog_evaluation() -> Evaluation {
    Evaluation {
        evaluation_type: crate::evaluation::EvaluationType::Hog,
        prompt: "return length(output) < 2000".into(),
        model_configuration: None,
        ..configured()
    }
}

#[tokio::test]
async fn a_code_evaluator_answers_without_an_llm_and_its_result_names_no_key() {
    let mut mocks = Mocks::new(hog_evaluation()).no_call();
    mocks.code.expect_run().times(1).returning(|source, input| {
        assert_eq!(source, "return length(output) < 2000");
        assert!(input.output.contains("Hello there!") && input.output.starts_with('['), "{}", input.output);
        Ok(Ok(crate::code::CodeRun {
            returned: Ok(Some(true)),
            prints: vec!["short".into()],
            duration: Duration::ZERO,
        }))
    });
    let (service, stored) = mocks.service();

    assert_eq!(service.run(&claimed(false)).await, JobOutcome::Finished);

    let stored = stored.lock().unwrap();
    let properties = &stored[0].properties;
    assert_eq!(properties["$ai_evaluation_result"], true);
    assert_eq!(properties["$ai_evaluation_reasoning"], "short");
    for absent in
        ["$ai_evaluation_key_type", "$ai_evaluation_key_id", "$ai_evaluation_model", "$ai_evaluation_provider"]
    {
        assert!(!properties.contains_key(absent), "{absent}");
    }
}

#[tokio::test]
async fn a_failing_code_evaluator_is_stopped_with_hog_error_at_the_first_error() {
    let mut mocks = Mocks::new(hog_evaluation()).no_call();
    mocks
        .code
        .expect_run()
        .returning(|_, _| Ok(Err(crate::code::CodeFailure("The code ran more than 100000 operations".into()))));
    mocks
        .evaluations
        .expect_stop_judging()
        .withf(|_, stop, reason, detail| {
            *stop == JudgeStop::One(evaluation_id())
                && *reason == StatusReason::HogError
                && detail.as_deref() == Some("The code ran more than 100000 operations")
        })
        .times(1)
        .returning(|_, _, _, _| Ok(1));
    let (service, stored) = mocks.service();

    let outcome = service.run(&claimed(false)).await;

    assert_eq!(outcome, JobOutcome::Fail("The code ran more than 100000 operations".into()));
    assert!(stored.lock().unwrap().is_empty());
}

#[tokio::test]
async fn code_that_could_not_be_run_is_tried_again_and_blames_nothing_on_the_evaluation() {
    let mut mocks = Mocks::new(hog_evaluation()).no_call();
    mocks.code.expect_run().times(1).returning(|_, _| Err(crate::code::CodeUnavailable("no thread".into())));
    mocks.evaluations.expect_stop_judging().never();
    let (service, stored) = mocks.service();

    let outcome = service.run(&claimed(false)).await;

    assert_eq!(outcome, JobOutcome::Retry("the code evaluator could not run the code: no thread".into()));
    assert!(stored.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_batch_of_code_jobs_that_could_not_be_run_is_tried_again_without_stopping_an_evaluation() {
    let mut mocks = Mocks::new(hog_evaluation()).no_call().numbered_generations_stored();
    mocks.code.expect_run_batch().times(1).returning(|_| Err(crate::code::CodeUnavailable("no thread".into())));
    mocks.evaluations.expect_stop_judging().never();
    let batch_ends = mocks.batch_ends.clone();
    let (service, stored) = mocks.service();

    let outcomes = service.run_batch(&[code_job(1), code_job(2)]).await;

    let retry = JobOutcome::Retry("the code evaluator could not run the code: no thread".into());
    assert_eq!(outcomes, vec![retry.clone(), retry]);
    assert!(stored.lock().unwrap().is_empty());
    assert!(batch_ends.lock().unwrap().is_empty(), "no job ended");
}

/// A `judge_code` job of generation `n` listing both evaluations.
fn code_job(n: u128) -> ClaimedJob {
    let payload = JudgePayload {
        evaluations: vec![evaluation_id(), other_evaluation_id()],
        generation: Uuid::from_u128(n),
        generation_timestamp: at(),
        manual: false,
    };
    ClaimedJob {
        lease: Lease { job: JobId(Uuid::from_u128(0x1000 + n)), token: Uuid::from_u128(0x2000 + n) },
        kind: Some(JobKind::JudgeCode),
        payload: serde_json::to_value(payload).unwrap(),
        attachment: None,
        ..claimed(false)
    }
}

fn generation_numbered(n: u128) -> Generation {
    let mut generation = generation();
    generation.uuid = Uuid::from_u128(n);
    generation.properties.insert("$ai_output".into(), json!(format!("answer {n}")));
    generation.properties.remove("$ai_output_choices");
    generation
}

#[tokio::test]
async fn a_batch_of_code_jobs_compiles_each_code_once_and_ends_every_job_in_one_transaction() {
    let mut mocks = Mocks::new(hog_evaluation()).no_call();
    mocks.store.expect_events().times(1).returning(|_, wanted| {
        assert!(wanted.iter().all(|(_, timestamp)| *timestamp == at()), "each generation with its timestamp");
        assert_eq!(wanted.len(), 3, "one read for the batch");
        Ok(wanted.iter().map(|(uuid, _)| generation_numbered(uuid.as_u128())).collect())
    });
    mocks.code.expect_run().never();
    mocks.code.expect_run_batch().times(1).returning(|batch| {
        assert_eq!(batch.sources.len(), 2, "each evaluation's code once");
        assert_eq!(batch.inputs.len(), 3, "each generation once");
        let outputs: Vec<&str> = batch.inputs.iter().map(|i| i.output.as_str()).collect();
        assert_eq!(outputs, ["answer 1", "answer 2", "answer 3"]);
        assert_eq!(batch.runs, vec![(0, 0), (1, 0), (0, 1), (1, 1), (0, 2), (1, 2)]);
        let ran = |pass: bool| {
            Some(Ok(crate::code::CodeRun { returned: Ok(Some(pass)), prints: vec![], duration: Duration::ZERO }))
        };
        let failed = Some(Err(crate::code::CodeFailure("Division by zero".into())));
        // the second evaluation fails on the second generation: its last run is skipped
        Ok(vec![ran(true), ran(false), ran(true), failed, ran(false), None])
    });
    mocks
        .evaluations
        .expect_stop_judging()
        .withf(|_, stop, reason, detail| {
            *stop == JudgeStop::One(other_evaluation_id())
                && *reason == StatusReason::HogError
                && detail.as_deref() == Some("Division by zero")
        })
        .times(1)
        .returning(|_, _, _, _| Ok(1));
    let batch_ends = mocks.batch_ends.clone();
    let (service, stored) = mocks.service();
    let jobs = [code_job(1), code_job(2), code_job(3)];

    let outcomes = service.run_batch(&jobs).await;

    assert_eq!(outcomes, vec![JobOutcome::Finished; 3], "every job ended with its results");
    let stored = stored.lock().unwrap();
    let verdicts: Vec<(String, bool)> = stored
        .iter()
        .map(|r| {
            (
                r.properties["$ai_evaluation_id"].as_str().unwrap().to_owned(),
                r.properties["$ai_evaluation_result"].as_bool().unwrap(),
            )
        })
        .collect();
    let (first, other) = (evaluation_id().to_string(), other_evaluation_id().to_string());
    assert_eq!(verdicts, vec![(first.clone(), true), (other.clone(), false), (first.clone(), true), (first, false)]);
    let ends = batch_ends.lock().unwrap();
    assert_eq!(ends.len(), 1, "one transaction");
    let ends: Vec<&JobEnd> = ends[0].iter().map(|(_, end)| end).collect();
    assert_eq!(
        ends,
        [
            &JobEnd::Complete,
            &JobEnd::Fail(format!("evaluation {other}: Division by zero")),
            &JobEnd::Fail(format!("evaluation {other}: the evaluation was disabled before it ran")),
        ]
    );
}

#[tokio::test]
async fn a_code_job_whose_evaluation_became_an_llm_judge_fails_it_without_a_call() {
    let mut mocks = Mocks::new(configured()).no_call().numbered_generations_stored();
    mocks.code.expect_run_batch().never();
    let batch_ends = mocks.batch_ends.clone();
    let (service, stored) = mocks.service();

    let outcomes = service.run_batch(&[code_job(1)]).await;

    assert_eq!(outcomes, vec![JobOutcome::Finished]);
    assert!(stored.lock().unwrap().is_empty());
    let ends = batch_ends.lock().unwrap();
    let reason = format!("evaluation {}: the evaluation is no longer a code evaluator", evaluation_id());
    assert_eq!(ends[0][0].1, JobEnd::Fail(reason));
}

#[tokio::test]
async fn a_job_of_a_stored_batch_judges_each_of_its_generations_and_names_the_one_that_failed() {
    let mut mocks = Mocks::new(hog_evaluation()).no_call().numbered_generations_stored();
    mocks.code.expect_run_batch().times(1).returning(|batch| {
        assert_eq!((batch.sources.len(), batch.inputs.len()), (1, 3), "one code, three generations");
        let ran = Some(Ok(crate::code::CodeRun { returned: Ok(Some(true)), prints: vec![], duration: Duration::ZERO }));
        Ok(vec![
            ran,
            Some(Ok(crate::code::CodeRun { returned: Ok(Some(false)), prints: vec![], duration: Duration::ZERO })),
            Some(Err(crate::code::CodeFailure("Division by zero".into()))),
        ])
    });
    mocks.evaluations.expect_stop_judging().times(1).returning(|_, _, _, _| Ok(1));
    let batch_ends = mocks.batch_ends.clone();
    let (service, stored) = mocks.service();
    let single = |n: u128, evaluations: Vec<EvaluationId>| JudgePayload {
        evaluations,
        generation: Uuid::from_u128(n),
        generation_timestamp: at(),
        manual: false,
    };
    let payload = CodeJudgePayload {
        generations: vec![
            single(1, vec![evaluation_id()]),
            single(2, vec![evaluation_id()]),
            single(3, vec![evaluation_id()]),
        ],
    };
    let job = ClaimedJob { payload: serde_json::to_value(payload).unwrap(), ..code_job(1) };

    assert_eq!(service.run_batch(std::slice::from_ref(&job)).await, vec![JobOutcome::Finished]);

    assert_eq!(stored.lock().unwrap().len(), 2, "the generations judged before the failure");
    let ends = batch_ends.lock().unwrap();
    let reason = format!("generation {}, evaluation {}: Division by zero", Uuid::from_u128(3), evaluation_id());
    assert_eq!(ends[0], vec![(job.lease, JobEnd::Fail(reason))]);
}

/// A planned `judge_code` job of generation `n` judged by the hog evaluation.
fn planned_code_job(n: u128) -> NewJob {
    let payload = single_code_payload(n);
    NewJob::new(PROJECT, JobKind::JudgeCode, payload.unique_key(PROJECT), serde_json::to_value(payload).unwrap(), 3)
}

fn single_code_payload(n: u128) -> JudgePayload {
    JudgePayload {
        evaluations: vec![evaluation_id()],
        generation: Uuid::from_u128(n),
        generation_timestamp: at(),
        manual: false,
    }
}

/// Generation `n` as ingestion stored it.
fn stored_event(n: u128) -> crate::ingestion::IncomingEvent {
    let generation = generation_numbered(n);
    crate::ingestion::IncomingEvent {
        uuid: generation.uuid,
        event: crate::ingestion::AiEventName::parse(&generation.event).unwrap(),
        distinct_id: generation.distinct_id,
        timestamp: generation.timestamp,
        properties: generation.properties,
    }
}

#[test]
fn a_stored_batch_gathers_its_code_jobs_and_leaves_the_others_alone() {
    let project = PROJECT;
    let events: Vec<_> = (1..=300).map(stored_event).collect();
    let mut jobs: Vec<NewJob> = (1..=300).map(planned_code_job).collect();
    jobs.push(judge_job(project, &single_code_payload(1)));
    let gathered = gather_code_jobs(project, jobs, &events);
    let kinds: Vec<(JobKind, usize)> =
        gathered.iter().map(|job| (job.kind, CodeJudgePayload::read(&job.payload).unwrap().len())).collect();
    assert_eq!(
        kinds,
        vec![(JobKind::Judge, 1), (JobKind::JudgeCode, MAX_CODE_GENERATIONS_PER_JOB), (JobKind::JudgeCode, 44)]
    );
    let first = CodeJudgePayload::read(&gathered[1].payload).unwrap();
    assert_eq!(first[0], single_code_payload(1), "in order, whole");
    assert_ne!(gathered[1].id, gathered[2].id);
    assert_eq!(
        gathered[1].id,
        gather_code_jobs(project, (1..=300).map(planned_code_job).collect(), &events)[0].id,
        "keyed by the batch's first generation"
    );
    assert_eq!(gathered[0].attachment, None, "an LLM judge's job carries nothing");
    let carried = |job: &NewJob| -> Vec<Generation> {
        let attachment = job.attachment.as_deref().expect("a code job carries its generations");
        crate::judge::attached_generations(attachment, &crate::code::CodeReads::everything())
            .unwrap()
            .into_iter()
            .map(|carried| carried.generation)
            .collect()
    };
    assert_eq!(carried(&gathered[1]), (1..=256).map(generation_numbered).collect::<Vec<_>>(), "as stored, in order");
    assert_eq!(carried(&gathered[2]).len(), 44);
}

#[tokio::test]
async fn a_code_job_judges_the_generations_it_carries_and_reads_only_those_it_lacks() {
    let mut mocks = Mocks::new(hog_evaluation()).no_call();
    mocks.store.expect_events().times(1).returning(|_, wanted| {
        assert_eq!(wanted, &[(Uuid::from_u128(3), at())], "only the generation not carried");
        Ok(vec![generation_numbered(3)])
    });
    mocks.code.expect_run_batch().times(1).returning(|batch| {
        let outputs: Vec<&str> = batch.inputs.iter().map(|i| i.output.as_str()).collect();
        assert_eq!(outputs, ["answer 1", "answer 2", "answer 3"]);
        let ran = Some(Ok(crate::code::CodeRun { returned: Ok(Some(true)), prints: vec![], duration: Duration::ZERO }));
        Ok(vec![ran.clone(), ran.clone(), ran])
    });
    let (service, stored) = mocks.service();
    // Generation 3 is carried by no job (as if the attachment had lost it).
    let events: Vec<_> = (1..=2).map(stored_event).collect();
    let gathered = gather_code_jobs(PROJECT, (1..=3).map(planned_code_job).collect(), &events);
    let job =
        ClaimedJob { payload: gathered[0].payload.clone(), attachment: gathered[0].attachment.clone(), ..code_job(1) };

    assert_eq!(service.run_batch(std::slice::from_ref(&job)).await, vec![JobOutcome::Finished]);

    let judged: Vec<Value> =
        stored.lock().unwrap().iter().map(|r| r.properties["$ai_target_event_id"].clone()).collect();
    let expected: Vec<Value> = (1..=3).map(|n| json!(Uuid::from_u128(n).to_string())).collect();
    assert_eq!(judged, expected);
}

#[tokio::test]
async fn a_code_job_whose_attachment_does_not_read_reads_its_generations() {
    let mut mocks = Mocks::new(hog_evaluation()).no_call();
    mocks.store.expect_events().times(1).returning(|_, wanted| {
        assert_eq!(wanted.len(), 1);
        Ok(vec![generation_numbered(1)])
    });
    mocks.code.expect_run_batch().times(1).returning(|batch| {
        assert_eq!(batch.inputs[0].output, "answer 1");
        Ok(vec![Some(Ok(crate::code::CodeRun { returned: Ok(Some(true)), prints: vec![], duration: Duration::ZERO }))])
    });
    let (service, stored) = mocks.service();
    let job = ClaimedJob {
        payload: serde_json::to_value(single_code_payload(1)).unwrap(),
        attachment: Some("[{\"uuid\": \"not a uuid\"}]".into()),
        ..code_job(1)
    };

    assert_eq!(service.run_batch(std::slice::from_ref(&job)).await, vec![JobOutcome::Finished]);
    assert_eq!(stored.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_batch_of_code_jobs_stores_its_results_as_new_ones() {
    let mut mocks = Mocks::new(hog_evaluation()).no_call().numbered_generations_stored();
    mocks.code.expect_run_batch().times(1).returning(|batch| {
        Ok(batch
            .runs
            .iter()
            .map(|_| {
                Some(Ok(crate::code::CodeRun { returned: Ok(Some(true)), prints: vec![], duration: Duration::ZERO }))
            })
            .collect())
    });
    mocks.unit_of_work.checkpoint();
    mocks.unit_of_work.expect_begin().times(1).returning(|| {
        let mut tx = MockTransaction::default();
        tx.events.expect_insert().never();
        tx.events.expect_insert_fresh().times(1).returning(|_, events| Ok(events.iter().map(|e| e.uuid).collect()));
        tx.jobs.expect_end_each().returning(|ended| Ok(ended.iter().map(|(lease, _)| lease.job).collect()));
        Ok(Box::new(tx))
    });
    let (service, _) = mocks.service();

    assert_eq!(service.run_batch(&[code_job(1), code_job(2)]).await, vec![JobOutcome::Finished; 2]);
}
