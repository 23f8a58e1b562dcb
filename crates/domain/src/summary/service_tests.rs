//! Unit tests of the summary use case, with every port mocked.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use mockall::predicate::eq;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use uuid::Uuid;

use super::*;
use crate::evaluation::{
    Conditions, EvaluationState, EvaluationType, MockEvaluationRepository, ModelConfiguration, OutputType,
};
use crate::evaluation_config::EvaluationConfig;
use crate::ingestion::MockAiEventStore;
use crate::llm::testing::LlmMocks;
use crate::llm::{Completion, TokenUsage};
use crate::provider_key::{KeyState, Provider, ProviderKey};
use crate::summary::{MockRateLimiter, MockSummaryCache, PROMPT_BUDGET_CHARS, RunResult, SummaryStatistics, SystemLlm};
use crate::{ModelConfigurationId, ProjectId, ProviderKeyId};

const PROJECT: ProjectId = ProjectId(7);

fn evaluation_id() -> EvaluationId {
    EvaluationId(Uuid::from_u128(0xE7A1))
}

fn evaluation(model_configuration: Option<ModelConfiguration>) -> Evaluation {
    let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    Evaluation {
        id: evaluation_id(),
        project: PROJECT,
        name: "Politeness".into(),
        description: "Is the answer polite?".into(),
        state: EvaluationState::Active,
        evaluation_type: EvaluationType::LlmJudge,
        prompt: "Pass when the answer is polite.".into(),
        output_type: OutputType::BooleanWithNa,
        conditions: Conditions::default(),
        model_configuration,
        max_runs_per_hour: None,
        created_by: None,
        created_at: at,
        updated_at: at,
        deleted: false,
    }
}

fn configured(provider: Provider, model: &str, key: Option<ProviderKeyId>) -> Option<ModelConfiguration> {
    Some(ModelConfiguration {
        id: ModelConfigurationId(Uuid::from_u128(0xC0)),
        provider,
        model: model.into(),
        provider_key: key,
    })
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

fn key(id: ProviderKeyId, provider: Provider, state: KeyState) -> ProviderKey {
    let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    ProviderKey {
        id,
        provider,
        name: "key".into(),
        state,
        api_key_masked: "sk-...abcd".into(),
        created_at: at,
        updated_at: at,
        ..crate::provider_key::testing::stored_key(PROJECT)
    }
}

fn draft_json(ids: &[&str]) -> serde_json::Value {
    json!({
        "overall_assessment": "Mostly polite.",
        "pass_patterns": [{"title": "Greets", "description": "Says hello", "frequency": "common",
                           "example_generation_ids": ids}],
        "fail_patterns": [],
        "na_patterns": [],
        "recommendations": ["Be kind", "Say thanks"]
    })
}

fn completion(value: serde_json::Value) -> Completion {
    Completion { value, usage: TokenUsage { input: 100, output: 20 }, attempts: 1 }
}

/// Every port mocked; tests set expectations, then build the service.
struct Mocks {
    llm: LlmMocks,
    evaluations: MockEvaluationRepository,
    events: MockAiEventStore,
    cache: MockSummaryCache,
    limiter: MockRateLimiter,
}

impl Mocks {
    /// An allowed request, an evaluation without configuration, `runs`, an empty cache
    /// whose flight this request leads, no active key, calls recorded.
    fn new(evaluation: Evaluation, runs: Vec<EvaluationRun>) -> Self {
        let mut mocks = Mocks {
            llm: LlmMocks::default(),
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
        mocks.llm.configs.expect_get().returning(|project| Ok(EvaluationConfig::default_for(project)));
        mocks.llm.calls.expect_record().returning(|_| Ok(()));
        mocks.llm.cipher.expect_open().returning(|_, _| Ok(SecretString::from(r#"{"api_key":"sk-stored-key"}"#)));
        mocks
    }

    fn system(mut self) -> Self {
        self.llm.system = Some(SystemLlm {
            provider: Provider::Anthropic,
            api_key: SecretString::from("sk-ant-system"),
            model: "claude-haiku-4-5".into(),
            azure: None,
        });
        self
    }

    /// A stored key the repository finds (with a sealed secret).
    fn stored_key(&mut self, stored: ProviderKey) {
        let id = stored.id;
        self.llm.keys.expect_find().with(eq(PROJECT), eq(id)).returning(move |_, _| Ok(Some(stored.clone())));
        self.llm
            .keys
            .expect_find_sealed()
            .with(eq(PROJECT), eq(id))
            .returning(|_, _| Ok(Some(crate::crypto::SealedSecret(b"sealed".to_vec()))));
    }

    fn active_key(&mut self, id: ProviderKeyId) {
        self.llm.configs.checkpoint();
        self.llm.configs.expect_get().returning(move |project| {
            Ok(EvaluationConfig { active_provider_key: Some(id), ..EvaluationConfig::default_for(project) })
        });
    }

    fn service(self) -> SummaryService {
        let llm = self.llm.build();
        SummaryService::new(
            SummaryPorts {
                evaluations: Arc::new(self.evaluations),
                events: Arc::new(self.events),
                llm,
                cache: Arc::new(self.cache),
                rate_limiter: Arc::new(self.limiter),
            },
            SummaryConfig { llm_timeout: Duration::from_secs(30) },
        )
    }
}

fn input() -> SummaryInput {
    SummaryInput { evaluation_id: Some(evaluation_id().to_string()), ..SummaryInput::default() }
}

async fn summarize(service: &SummaryService, input: SummaryInput) -> Result<EvaluationSummary, SummarizeError> {
    service.summarize(crate::ApiKeyId(Uuid::from_u128(0xA91)), PROJECT, input).await
}

#[tokio::test]
async fn statistics_are_computed_from_the_runs_never_taken_from_the_model() {
    let mut mocks = Mocks::new(evaluation(None), mixed_runs()).system();
    let mut answer = draft_json(&["gen-0"]);
    answer["statistics"] = json!({"total_analyzed": 999, "pass_count": 999, "fail_count": 0, "na_count": 0});
    mocks.llm.completion.expect_complete().times(1).returning(move |_, _, _| Ok(completion(answer.clone())));

    let summary = summarize(&mocks.service(), input()).await.unwrap();

    assert_eq!(summary.statistics, SummaryStatistics { total_analyzed: 6, pass_count: 3, fail_count: 2, na_count: 1 });
}

#[tokio::test]
async fn invented_example_ids_are_dropped_and_patterns_left_without_examples_too() {
    let mut mocks = Mocks::new(evaluation(None), mixed_runs()).system();
    let answer = json!({
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
    mocks.llm.completion.expect_complete().returning(move |_, _, _| Ok(completion(answer.clone())));

    let summary = summarize(&mocks.service(), input()).await.unwrap();

    assert_eq!(summary.pass_patterns.len(), 1, "{summary:?}");
    assert_eq!(summary.pass_patterns[0].example_generation_ids, vec!["gen-0", "gen-1"]);
    assert_eq!(summary.fail_patterns[0].example_generation_ids, vec!["gen-3"]);
}

#[tokio::test]
async fn the_evaluations_configured_key_and_model_come_first() {
    let key_id = ProviderKeyId(Uuid::from_u128(0xAB));
    let mut mocks =
        Mocks::new(evaluation(configured(Provider::Openai, "gpt-4.1", Some(key_id))), mixed_runs()).system();
    mocks.stored_key(key(key_id, Provider::Openai, KeyState::Ok));
    mocks.llm.keys.expect_touch_last_used().with(eq(PROJECT), eq(key_id)).times(1).returning(|_, _| Ok(()));
    mocks.llm.completion.expect_complete().times(1).returning(|credentials, request, _| {
        assert_eq!(credentials.provider, Provider::Openai);
        assert_eq!(credentials.api_key.expose_secret(), "sk-stored-key");
        assert_eq!(request.model, "gpt-4.1");
        Ok(completion(draft_json(&["gen-0"])))
    });
    let recorded = Arc::new(Mutex::new(Vec::new()));
    let sink = recorded.clone();
    mocks.llm.calls.checkpoint();
    mocks.llm.calls.expect_record().returning(move |call| {
        sink.lock().unwrap().push(call.clone());
        Ok(())
    });

    summarize(&mocks.service(), input()).await.unwrap();

    let calls = recorded.lock().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].key, Some(key_id));
    assert_eq!(calls[0].purpose, crate::llm::LlmPurpose::Summary);
    assert_eq!((calls[0].input_tokens, calls[0].output_tokens), (100, 20));
    assert_eq!(calls[0].outcome, crate::llm::LlmCallOutcome::Ok);
}

#[tokio::test]
async fn without_a_configured_key_the_active_key_runs_its_providers_default_model() {
    let key_id = ProviderKeyId(Uuid::from_u128(0xAC));
    let mut mocks = Mocks::new(evaluation(configured(Provider::Openai, "gpt-4.1", None)), mixed_runs()).system();
    mocks.stored_key(key(key_id, Provider::Gemini, KeyState::Ok));
    mocks.active_key(key_id);
    mocks.llm.keys.expect_touch_last_used().times(1).returning(|_, _| Ok(()));
    mocks.llm.completion.expect_complete().times(1).returning(|credentials, request, _| {
        assert_eq!(credentials.provider, Provider::Gemini);
        assert_eq!(request.model, "gemini-2.5-flash");
        Ok(completion(draft_json(&["gen-0"])))
    });

    summarize(&mocks.service(), input()).await.unwrap();
}

#[tokio::test]
async fn an_active_key_that_is_not_ok_falls_through_to_the_system_llm() {
    let key_id = ProviderKeyId(Uuid::from_u128(0xAD));
    let mut mocks = Mocks::new(evaluation(None), mixed_runs()).system();
    mocks.stored_key(key(key_id, Provider::Openai, KeyState::Invalid));
    mocks.active_key(key_id);
    mocks.llm.keys.expect_touch_last_used().never();
    mocks.llm.completion.expect_complete().times(1).returning(|credentials, request, _| {
        assert_eq!(credentials.provider, Provider::Anthropic);
        assert_eq!(credentials.api_key.expose_secret(), "sk-ant-system");
        assert_eq!(request.model, "claude-haiku-4-5");
        Ok(completion(draft_json(&["gen-0"])))
    });

    summarize(&mocks.service(), input()).await.unwrap();
}

#[tokio::test]
async fn an_azure_active_key_uses_the_evaluations_azure_model_or_the_first_deployment() {
    let key_id = ProviderKeyId(Uuid::from_u128(0xAE));
    let mut mocks = Mocks::new(evaluation(None), mixed_runs());
    mocks.stored_key(key(key_id, Provider::AzureOpenai, KeyState::Ok));
    mocks.llm.cipher.checkpoint();
    mocks.llm.cipher.expect_open().returning(|_, _| {
        Ok(SecretString::from(r#"{"api_key":"az-key","azure_endpoint":"https://r.openai.azure.com"}"#))
    });
    mocks.active_key(key_id);
    mocks.llm.keys.expect_touch_last_used().returning(|_, _| Ok(()));
    mocks
        .llm
        .gateway
        .expect_list_models()
        .times(1)
        .returning(|_| Ok(vec![crate::llm::ListedModel { id: "my-deployment".into(), created: None }]));
    mocks.llm.completion.expect_complete().times(1).returning(|_, request, _| {
        assert_eq!(request.model, "my-deployment");
        Ok(completion(draft_json(&["gen-0"])))
    });

    summarize(&mocks.service(), input()).await.unwrap();
}

#[tokio::test]
async fn with_no_key_and_no_system_llm_the_answer_says_how_to_configure_one() {
    let mut mocks = Mocks::new(evaluation(None), mixed_runs());
    mocks.llm.completion.expect_complete().never();

    let error = summarize(&mocks.service(), input()).await.unwrap_err();

    assert!(matches!(error, SummarizeError::NoLlm), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("active key") && message.contains("LLMA_SYSTEM_LLM_PROVIDER"), "{message}");
}

#[tokio::test]
async fn a_rejected_key_becomes_invalid_and_the_summary_fails() {
    let key_id = ProviderKeyId(Uuid::from_u128(0xAF));
    let mut mocks = Mocks::new(evaluation(configured(Provider::Openai, "gpt-4.1", Some(key_id))), mixed_runs());
    mocks.stored_key(key(key_id, Provider::Openai, KeyState::Ok));
    mocks.llm.keys.expect_touch_last_used().returning(|_, _| Ok(()));
    mocks.llm.completion.expect_complete().returning(|_, _, _| Err(CompletionError::KeyRejected));
    mocks
        .llm
        .key_writes
        .expect_update()
        .withf(move |project, id, changes| {
            *project == PROJECT && *id == key_id && changes.state == Some(KeyState::Invalid)
        })
        .times(1)
        .returning(|_, _, _| Ok(None));
    mocks.cache.checkpoint();
    mocks.cache.expect_fresh().returning(|_, _| Ok(None));
    mocks.cache.expect_begin().returning(|_, _, _, _, _| Ok(Flight::Leader(Uuid::nil())));
    mocks.cache.expect_release().times(1).returning(|_, _| Ok(()));
    mocks.cache.expect_store().never();

    let error = summarize(&mocks.service(), input()).await.unwrap_err();

    assert!(matches!(error, SummarizeError::LlmFailed), "{error:?}");
}

#[tokio::test]
async fn timeouts_and_unusable_answers_are_llm_failures() {
    for failure in [CompletionError::Timeout, CompletionError::BadOutput("nope".into())] {
        let mut mocks = Mocks::new(evaluation(None), mixed_runs()).system();
        let deadline_seen = Arc::new(Mutex::new(None));
        let seen = deadline_seen.clone();
        mocks.llm.completion.expect_complete().returning(move |_, _, deadline| {
            *seen.lock().unwrap() = Some(deadline);
            Err(failure.clone())
        });

        let error = summarize(&mocks.service(), input()).await.unwrap_err();

        assert!(matches!(error, SummarizeError::LlmFailed), "{error:?}");
        let deadline = deadline_seen.lock().unwrap().expect("called");
        assert!(deadline <= Duration::from_secs(30) && deadline > Duration::from_secs(25), "{deadline:?}");
    }
    // An answer of the wrong shape is unusable too.
    let mut mocks = Mocks::new(evaluation(None), mixed_runs()).system();
    mocks.llm.completion.expect_complete().returning(|_, _, _| Ok(completion(json!({"overall": 1}))));
    assert!(matches!(summarize(&mocks.service(), input()).await, Err(SummarizeError::LlmFailed)));
}

#[tokio::test]
async fn a_cached_summary_is_answered_without_calling_the_llm_unless_refresh_is_forced() {
    let cached = EvaluationSummary::from_draft(serde_json::from_value(draft_json(&["gen-0"])).unwrap(), &mixed_runs());
    let mut mocks = Mocks::new(evaluation(None), mixed_runs()).system();
    mocks.cache.checkpoint();
    let hit = cached.clone();
    mocks.cache.expect_fresh().returning(move |_, _| Ok(Some(hit.clone())));
    mocks.llm.completion.expect_complete().never();
    assert_eq!(summarize(&mocks.service(), input()).await.unwrap(), cached);

    let mut mocks = Mocks::new(evaluation(None), mixed_runs()).system();
    mocks.cache.checkpoint();
    mocks.cache.expect_fresh().never();
    mocks.cache.expect_begin().returning(|_, _, _, _, _| Ok(Flight::Leader(Uuid::nil())));
    mocks.cache.expect_release().returning(|_, _| Ok(()));
    mocks.cache.expect_store().times(1).returning(|_, _| Ok(()));
    mocks.llm.completion.expect_complete().times(1).returning(|_, _, _| Ok(completion(draft_json(&["gen-1"]))));
    let refreshed = summarize(&mocks.service(), SummaryInput { force_refresh: Some(true), ..input() }).await.unwrap();
    assert_eq!(refreshed.pass_patterns[0].example_generation_ids, vec!["gen-1"]);
}

#[tokio::test]
async fn a_request_that_waited_for_another_gets_its_result_without_calling_the_llm() {
    let computed =
        EvaluationSummary::from_draft(serde_json::from_value(draft_json(&["gen-2"])).unwrap(), &mixed_runs());
    let mut mocks = Mocks::new(evaluation(None), mixed_runs()).system();
    mocks.cache.checkpoint();
    mocks.cache.expect_fresh().returning(|_, _| Ok(None));
    let done = computed.clone();
    mocks.cache.expect_begin().returning(move |_, _, _, _, _| Ok(Flight::Done(Box::new(done.clone()))));
    mocks.cache.expect_release().never();
    mocks.llm.completion.expect_complete().never();

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
    let mut mocks = Mocks::new(evaluation(None), runs).system();
    let requests = Arc::new(Mutex::new(Vec::<CompletionRequest>::new()));
    let seen = requests.clone();
    mocks.llm.completion.expect_complete().returning(move |_, request, _| {
        seen.lock().unwrap().push(request.clone());
        Ok(completion(draft_json(&["gen-0", "gen-249", "gen-9999"])))
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
    let mut mocks = Mocks::new(huge, runs).system();
    mocks.llm.completion.expect_complete().returning(|_, request, _| {
        assert!(request.system.chars().count() + request.user.chars().count() <= PROMPT_BUDGET_CHARS);
        Ok(completion(draft_json(&["gen-0"])))
    });

    summarize(&mocks.service(), input()).await.unwrap();
}

#[tokio::test]
async fn a_throttled_key_is_refused_before_anything_else() {
    let mut mocks = Mocks::new(evaluation(None), mixed_runs()).system();
    mocks.limiter.checkpoint();
    mocks
        .limiter
        .expect_acquire()
        .returning(|_, _, _| Ok(RateDecision::Limited { retry_after: Duration::from_secs(42) }));
    mocks.evaluations.checkpoint();
    mocks.evaluations.expect_find().never();

    let error = summarize(&mocks.service(), input()).await.unwrap_err();

    assert!(matches!(error, SummarizeError::Throttled { retry_after } if retry_after == Duration::from_secs(42)));
}

#[tokio::test]
async fn unknown_evaluations_and_missing_runs_have_their_own_errors() {
    let mut mocks = Mocks::new(evaluation(None), mixed_runs()).system();
    mocks.evaluations.checkpoint();
    mocks.evaluations.expect_find().returning(|_, _| Ok(None));
    let error = summarize(&mocks.service(), input()).await.unwrap_err();
    assert_eq!(error.to_string(), format!("Evaluation {} not found", evaluation_id()));

    let mut mocks = Mocks::new(evaluation(None), Vec::new()).system();
    mocks.llm.completion.expect_complete().never();
    let error = summarize(&mocks.service(), input()).await.unwrap_err();
    assert!(matches!(error, SummarizeError::NoRuns), "{error:?}");
}

#[tokio::test]
async fn the_run_query_carries_the_filter_the_ids_and_the_limit() {
    let generation = Uuid::from_u128(0x6E);
    let mut mocks = Mocks::new(evaluation(None), mixed_runs()).system();
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
    let request =
        SummaryInput { filter: Some("fail".into()), generation_ids: Some(vec![generation.to_string()]), ..input() };
    assert!(matches!(summarize(&mocks.service(), request).await, Err(SummarizeError::NoRuns)));
}

#[test]
fn the_body_is_validated_field_by_field() {
    let field = |input: SummaryInput| match parse_request(input) {
        Err(SummarizeError::Invalid { field, .. }) => field,
        other => panic!("expected a field error, got {other:?}"),
    };
    assert_eq!(field(SummaryInput::default()), "evaluation_id");
    assert_eq!(field(SummaryInput { evaluation_id: Some("nope".into()), ..input() }), "evaluation_id");
    assert_eq!(field(SummaryInput { filter: Some("maybe".into()), ..input() }), "filter");
    let too_many = (0..251).map(|_| Uuid::new_v4().to_string()).collect();
    assert_eq!(field(SummaryInput { generation_ids: Some(too_many), ..input() }), "generation_ids");
    assert_eq!(field(SummaryInput { generation_ids: Some(vec!["x".into()]), ..input() }), "generation_ids");
    let request = parse_request(input()).unwrap();
    assert_eq!((request.filter, request.force_refresh, request.generation_ids), (SummaryFilter::All, false, None));
}
