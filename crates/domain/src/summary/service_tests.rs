//! Unit tests of the summary use case, with every port mocked.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use serde_json::json;
use uuid::Uuid;

use super::*;
use crate::evaluation::{MockEvaluationRepository, ModelConfiguration};
use crate::ingestion::MockAiEventStore;
use crate::llm::{CompletionError, LlmAnswer, MockLlm, PaidBy};
use crate::provider_key::Provider;
use crate::summary::{MockRateLimiter, MockSummaryCache, PROMPT_BUDGET_CHARS, RunResult, SummaryStatistics};
use crate::{EvaluationId, ProjectId};

const PROJECT: ProjectId = ProjectId(7);

fn evaluation_id() -> EvaluationId {
    EvaluationId(Uuid::from_u128(0xE1))
}

fn evaluation(model_configuration: Option<ModelConfiguration>) -> Evaluation {
    Evaluation { model_configuration, ..crate::evaluation::test_support::configured(PROJECT, None) }
}

fn run(n: u128, result: RunResult, reasoning: &str) -> EvaluationRun {
    EvaluationRun {
        event: Uuid::from_u128(0x1000 + n),
        generation_id: format!("gen-{n}"),
        result,
        reasoning: reasoning.into(),
        timestamp: Utc.with_ymd_and_hms(2026, 1, 2, 0, 0, 0).unwrap(),
    }
}

/// 3 pass, 2 fail, 1 na: gen-0..gen-5.
fn mixed_runs() -> Vec<EvaluationRun> {
    let results = [RunResult::Pass, RunResult::Pass, RunResult::Pass, RunResult::Fail, RunResult::Fail, RunResult::Na];
    results.iter().enumerate().map(|(n, result)| run(n as u128, *result, "because")).collect()
}

/// A draft with one pass pattern citing `ids` (all the checks here look at).
fn draft_json(ids: &[&str]) -> serde_json::Value {
    let cited =
        json!({"title": "Greets", "description": "Says hello", "frequency": "common", "example_generation_ids": ids});
    let no_patterns: [serde_json::Value; 0] = [];
    json!({"overall_assessment": "Mostly polite.", "pass_patterns": [cited], "fail_patterns": no_patterns,
           "na_patterns": no_patterns, "recommendations": ["Be kind"]})
}

fn answer(value: serde_json::Value) -> LlmAnswer {
    LlmAnswer { value, paid_by: PaidBy::Operator, provider: Provider::Anthropic, model: "claude-haiku-4-5".into() }
}

/// Every port mocked; tests set expectations, then build the service.
struct Mocks {
    llm: MockLlm,
    evaluations: MockEvaluationRepository,
    events: MockAiEventStore,
    cache: MockSummaryCache,
    limiter: MockRateLimiter,
}

impl Mocks {
    /// An allowed request, an evaluation without configuration, `runs`, an empty cache
    /// whose flight this request leads.
    fn new(evaluation: Evaluation, runs: Vec<EvaluationRun>) -> Self {
        let mut mocks = Mocks {
            llm: MockLlm::new(),
            evaluations: MockEvaluationRepository::new(),
            events: MockAiEventStore::new(),
            cache: MockSummaryCache::new(),
            limiter: MockRateLimiter::new(),
        };
        mocks.limiter.expect_acquire().returning(|_, _, _| Ok(RateDecision::Allowed));
        mocks.evaluations.expect_find().returning(move |_, _| Ok(Some(evaluation.clone())));
        mocks.events.expect_evaluation_runs().returning(move |_, _| Ok(runs.clone()));
        mocks.cache.expect_fresh().returning(|_, _| Ok(None));
        mocks.cache.expect_begin().returning(|_, _, _, _, _| Ok(Flight::Leader(Uuid::nil())));
        mocks.cache.expect_release().returning(|_, _| Ok(()));
        mocks.cache.expect_store().returning(|_, _| Ok(()));
        mocks
    }

    fn service(self) -> SummaryService {
        SummaryService::new(
            SummaryPorts {
                evaluations: Arc::new(self.evaluations),
                events: Arc::new(self.events),
                llm: Arc::new(self.llm),
                cache: Arc::new(self.cache),
                rate_limiter: Arc::new(self.limiter),
            },
            SummaryConfig { llm_timeout: Duration::from_secs(30) },
        )
    }
}

fn input() -> SummaryRequest {
    SummaryRequest {
        evaluation_id: evaluation_id(),
        filter: SummaryFilter::All,
        generation_ids: None,
        force_refresh: false,
    }
}

async fn summarize(service: &SummaryService, request: SummaryRequest) -> Result<EvaluationSummary, SummarizeError> {
    service.summarize(crate::ApiKeyId(Uuid::from_u128(0xA91)), PROJECT, Ok(request)).await
}

#[tokio::test]
async fn statistics_are_computed_from_the_runs_never_taken_from_the_model() {
    let mut mocks = Mocks::new(evaluation(None), mixed_runs());
    let mut draft = draft_json(&["gen-0"]);
    draft["statistics"] = json!({"total_analyzed": 999, "pass_count": 999, "fail_count": 0, "na_count": 0});
    mocks.llm.expect_run().times(1).returning(move |_, _| Ok(answer(draft.clone())));

    let summary = summarize(&mocks.service(), input()).await.unwrap();

    assert_eq!(summary.statistics, SummaryStatistics { total_analyzed: 6, pass_count: 3, fail_count: 2, na_count: 1 });
}

#[tokio::test]
async fn invented_example_ids_are_dropped_and_patterns_left_without_examples_too() {
    let mut mocks = Mocks::new(evaluation(None), mixed_runs());
    let draft = json!({
        "overall_assessment": "Mixed.",
        "pass_patterns": [
            {"title": "Real", "description": "d", "frequency": "common",
             "example_generation_ids": ["gen-0", "gen-invented", "gen-0", "gen-1"]},
            {"title": "Imagined", "description": "d", "frequency": "rare", "example_generation_ids": ["gen-404"]}
        ],
        "fail_patterns": [{"title": "Rude", "description": "d", "frequency": "occasional",
                           "example_generation_ids": ["gen-3"]}],
        "na_patterns": [],
        "recommendations": ["One", "Two"]
    });
    mocks.llm.expect_run().returning(move |_, _| Ok(answer(draft.clone())));

    let summary = summarize(&mocks.service(), input()).await.unwrap();

    assert_eq!(summary.pass_patterns.len(), 1, "{summary:?}");
    assert_eq!(summary.pass_patterns[0].example_generation_ids, vec!["gen-0", "gen-1"]);
    assert_eq!(summary.fail_patterns[0].example_generation_ids, vec!["gen-3"]);
}

#[tokio::test]
async fn the_summary_asks_the_llm_port_for_the_evaluation_within_the_timeout() {
    let mut mocks = Mocks::new(evaluation(None), mixed_runs());
    mocks.llm.expect_run().times(1).returning(|evaluation, request| {
        assert_eq!((evaluation.id, request.purpose), (evaluation_id(), LlmPurpose::Summary));
        let remaining = request.deadline.saturating_duration_since(Instant::now());
        assert!(remaining <= Duration::from_secs(30) && remaining > Duration::from_secs(25), "{remaining:?}");
        assert!(request.prompt.user.contains("gen-3"), "{}", request.prompt.user);
        Ok(answer(draft_json(&["gen-0"])))
    });

    summarize(&mocks.service(), input()).await.unwrap();
}

#[tokio::test]
async fn with_no_llm_the_summary_fails_saying_so() {
    let mut mocks = Mocks::new(evaluation(None), mixed_runs());
    mocks.llm.expect_run().times(1).returning(|_, _| Err(LlmError::NoLlm));

    let error = summarize(&mocks.service(), input()).await.unwrap_err();

    assert!(matches!(error, SummarizeError::NoLlm), "{error:?}");
}

#[tokio::test]
async fn failed_calls_and_unusable_answers_fail_the_summary_and_cache_nothing() {
    let failures: [fn() -> Result<LlmAnswer, LlmError>; 3] = [
        || Err(LlmError::Failed { error: CompletionError::KeyRejected, paid_by: PaidBy::Operator, model: "m".into() }),
        || Err(LlmError::Failed { error: CompletionError::Timeout, paid_by: PaidBy::Operator, model: "m".into() }),
        || Ok(answer(json!({"overall": 1}))),
    ];
    for failure in failures {
        let mut mocks = Mocks::new(evaluation(None), mixed_runs());
        mocks.llm.expect_run().returning(move |_, _| failure());
        mocks.llm.expect_refund().returning(|_, _| Ok(()));
        mocks.cache.checkpoint();
        mocks.cache.expect_fresh().returning(|_, _| Ok(None));
        mocks.cache.expect_begin().returning(|_, _, _, _, _| Ok(Flight::Leader(Uuid::nil())));
        mocks.cache.expect_release().times(1).returning(|_, _| Ok(()));
        mocks.cache.expect_store().never();

        let error = summarize(&mocks.service(), input()).await.unwrap_err();

        assert!(matches!(error, SummarizeError::LlmFailed), "{error:?}");
    }
}

#[tokio::test]
async fn a_cached_summary_is_answered_without_calling_the_llm_unless_refresh_is_forced() {
    let cached = EvaluationSummary::from_draft(serde_json::from_value(draft_json(&["gen-0"])).unwrap(), &mixed_runs());
    let mut mocks = Mocks::new(evaluation(None), mixed_runs());
    mocks.cache.checkpoint();
    let hit = cached.clone();
    mocks.cache.expect_fresh().returning(move |_, _| Ok(Some(hit.clone())));
    mocks.llm.expect_run().never();
    assert_eq!(summarize(&mocks.service(), input()).await.unwrap(), cached);

    let mut mocks = Mocks::new(evaluation(None), mixed_runs());
    mocks.cache.checkpoint();
    mocks.cache.expect_fresh().never();
    mocks.cache.expect_begin().returning(|_, _, _, _, _| Ok(Flight::Leader(Uuid::nil())));
    mocks.cache.expect_release().returning(|_, _| Ok(()));
    mocks.cache.expect_store().times(1).returning(|_, _| Ok(()));
    mocks.llm.expect_run().times(1).returning(|_, _| Ok(answer(draft_json(&["gen-1"]))));
    let refreshed = summarize(&mocks.service(), SummaryRequest { force_refresh: true, ..input() }).await.unwrap();
    assert_eq!(refreshed.pass_patterns[0].example_generation_ids, vec!["gen-1"]);
}

#[tokio::test]
async fn a_request_that_waited_for_another_gets_its_result_without_calling_the_llm() {
    let computed =
        EvaluationSummary::from_draft(serde_json::from_value(draft_json(&["gen-2"])).unwrap(), &mixed_runs());
    let mut mocks = Mocks::new(evaluation(None), mixed_runs());
    mocks.cache.checkpoint();
    mocks.cache.expect_fresh().returning(|_, _| Ok(None));
    let done = computed.clone();
    mocks.cache.expect_begin().returning(move |_, _, _, _, _| Ok(Flight::Done(Box::new(done.clone()))));
    mocks.cache.expect_release().never();
    mocks.llm.expect_run().never();

    assert_eq!(summarize(&mocks.service(), input()).await.unwrap(), computed);
}

#[test]
fn the_cache_key_changes_with_the_prompt_and_the_run_set_but_not_the_run_order() {
    let runs = mixed_runs();
    let key = SummaryKey::new(PROJECT, evaluation_id(), SummaryFilter::All, &runs, "prompt");
    let mut reversed = runs.clone();
    reversed.reverse();
    assert_eq!(key, SummaryKey::new(PROJECT, evaluation_id(), SummaryFilter::All, &reversed, "prompt"));
    assert_ne!(key, SummaryKey::new(PROJECT, evaluation_id(), SummaryFilter::All, &runs, "prompt v2"));
    assert_ne!(key, SummaryKey::new(PROJECT, evaluation_id(), SummaryFilter::All, &runs[1..], "prompt"));
    assert_ne!(key, SummaryKey::new(PROJECT, evaluation_id(), SummaryFilter::Fail, &runs, "prompt"));
    assert_ne!(key.as_text(), SummaryKey::new(PROJECT, evaluation_id(), SummaryFilter::All, &runs, "x").as_text());
}

#[tokio::test]
async fn many_long_runs_are_split_into_chunks_within_the_budget_and_merged() {
    let runs: Vec<EvaluationRun> = (0..250)
        .map(|n| run(n, if n % 2 == 0 { RunResult::Pass } else { RunResult::Fail }, &"r".repeat(5_000)))
        .collect();
    let mut mocks = Mocks::new(evaluation(None), runs);
    let requests = Arc::new(Mutex::new(Vec::<Prompt>::new()));
    let seen = requests.clone();
    mocks.llm.expect_run().returning(move |_, request| {
        seen.lock().unwrap().push(request.prompt.clone());
        Ok(answer(draft_json(&["gen-0", "gen-249", "gen-9999"])))
    });

    let summary = summarize(&mocks.service(), input()).await.unwrap();

    let requests = requests.lock().unwrap();
    assert!(requests.len() > 2, "{} calls", requests.len());
    for request in requests.iter() {
        let size = request.system.chars().count() + request.user.chars().count();
        assert!(size <= PROMPT_BUDGET_CHARS, "a request of {size} chars");
    }
    let merge = requests.last().unwrap();
    assert!(merge.user.contains("Partial analyses"), "the last call merges");
    let map_calls = &requests[..requests.len() - 1];
    for n in [0, 137, 249] {
        let id = format!("gen-{n} |");
        assert_eq!(map_calls.iter().filter(|r| r.user.contains(&id)).count(), 1, "gen-{n} in exactly one chunk");
    }
    assert!(!map_calls[0].user.contains(&"r".repeat(2_001)), "reasoning is truncated");
    assert_eq!(summary.pass_patterns[0].example_generation_ids, vec!["gen-0", "gen-249"]);
    assert_eq!(summary.statistics.total_analyzed, 250);
}

#[tokio::test]
async fn a_huge_judge_prompt_still_gives_requests_within_the_budget() {
    let mut huge = evaluation(None);
    huge.prompt = "p".repeat(50_000);
    huge.description = "d".repeat(20_000);
    let runs: Vec<EvaluationRun> = (0..40).map(|n| run(n, RunResult::Pass, &"r".repeat(3_000))).collect();
    let mut mocks = Mocks::new(huge, runs);
    mocks.llm.expect_run().returning(|_, request| {
        assert!(request.prompt.system.chars().count() + request.prompt.user.chars().count() <= PROMPT_BUDGET_CHARS);
        Ok(answer(draft_json(&["gen-0"])))
    });

    summarize(&mocks.service(), input()).await.unwrap();
}

#[tokio::test]
async fn a_throttled_key_is_refused_before_anything_else() {
    let mut mocks = Mocks::new(evaluation(None), mixed_runs());
    mocks.limiter.checkpoint();
    mocks
        .limiter
        .expect_acquire()
        .returning(|_, _, _| Ok(RateDecision::Limited { retry_after: Duration::from_secs(42) }));
    mocks.evaluations.checkpoint();
    mocks.evaluations.expect_find().never();

    let service = mocks.service();
    let error = summarize(&service, input()).await.unwrap_err();
    assert!(matches!(error, SummarizeError::Throttled { retry_after } if retry_after == Duration::from_secs(42)));

    let refused_body = Err(crate::invalid::FieldError::new("filter", crate::invalid::Rule::Required));
    let error = service.summarize(crate::ApiKeyId(Uuid::from_u128(0xA91)), PROJECT, refused_body).await.unwrap_err();
    assert!(matches!(error, SummarizeError::Throttled { .. }), "a refused body is answered after the rate limit");
}

#[tokio::test]
async fn unknown_evaluations_and_missing_runs_have_their_own_errors() {
    let mut mocks = Mocks::new(evaluation(None), mixed_runs());
    mocks.evaluations.checkpoint();
    mocks.evaluations.expect_find().returning(|_, _| Ok(None));
    let error = summarize(&mocks.service(), input()).await.unwrap_err();
    assert!(matches!(error, SummarizeError::EvaluationNotFound(id) if id == evaluation_id()), "{error:?}");

    let mut mocks = Mocks::new(evaluation(None), Vec::new());
    mocks.llm.expect_run().never();
    let error = summarize(&mocks.service(), input()).await.unwrap_err();
    assert!(matches!(error, SummarizeError::NoRuns), "{error:?}");
}

#[tokio::test]
async fn the_run_query_carries_the_filter_the_ids_and_the_limit() {
    let generation = Uuid::from_u128(0x6E);
    let mut mocks = Mocks::new(evaluation(None), mixed_runs());
    mocks.events.checkpoint();
    mocks
        .events
        .expect_evaluation_runs()
        .withf(move |project, query| {
            *project == PROJECT
                && query.filter == SummaryFilter::Fail
                && query.generation_ids == Some(vec![generation])
                && query.limit == 250
        })
        .returning(|_, _| Ok(Vec::new()));
    let request = SummaryRequest { filter: SummaryFilter::Fail, generation_ids: Some(vec![generation]), ..input() };
    assert!(matches!(summarize(&mocks.service(), request).await, Err(SummarizeError::NoRuns)));
}
