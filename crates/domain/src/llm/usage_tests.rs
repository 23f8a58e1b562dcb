//! The LLM port's implementation over mocked ports: who pays for each purpose (key order,
//! trial credits, the operator's LLM), the call's record and the keys' bookkeeping.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use mockall::predicate::eq;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::*;
use crate::evaluation_config::EvaluationConfig;
use crate::llm::testing::LlmMocks;
use crate::llm::{Completion, ListedModel, Prompt, ask};
use crate::models::TrialModels;
use crate::provider_key::ProviderKey;

const PROJECT: ProjectId = ProjectId(7);

fn key_id() -> ProviderKeyId {
    ProviderKeyId(Uuid::from_u128(0xC1))
}

fn evaluation(configuration: Option<(Provider, &str, Option<ProviderKeyId>)>) -> Evaluation {
    crate::evaluation::test_support::configured(PROJECT, configuration)
}

#[derive(Debug, Deserialize, PartialEq)]
struct Verdict {
    verdict: bool,
}

fn completion(value: Value) -> Completion {
    Completion { value, usage: TokenUsage { input: 100, output: 20 }, attempts: 1 }
}

fn prompt() -> Prompt {
    Prompt {
        system: "Judge.".into(),
        user: "Was it polite?".into(),
        schema_name: "verdict".into(),
        schema: json!({"type": "object"}),
        max_output_tokens: 100,
    }
}

/// The project has no active key; calls are recorded.
fn mocks() -> LlmMocks {
    let mut mocks = LlmMocks::default();
    mocks.configs.expect_get().returning(|project| Ok(EvaluationConfig::default_for(project)));
    mocks.calls.expect_record().returning(|_| Ok(()));
    mocks.cipher.expect_open().returning(|_, _| Ok(SecretString::from(r#"{"api_key":"sk-stored-key"}"#)));
    mocks
}

/// A key's use is marked on it.
fn touched(mocks: &mut LlmMocks, times: usize) {
    mocks.keys.expect_touch_last_used().with(eq(PROJECT), eq(key_id())).times(times).returning(|_, _| Ok(()));
}

fn stored_key(mocks: &mut LlmMocks, id: ProviderKeyId, provider: Provider, state: KeyState) {
    let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let stored = ProviderKey {
        id,
        provider,
        state,
        api_key_masked: "sk-...abcd".into(),
        created_at: at,
        updated_at: at,
        ..crate::provider_key::testing::stored_key(PROJECT)
    };
    mocks.keys.expect_find().with(eq(PROJECT), eq(id)).returning(move |_, _| Ok(Some(stored.clone())));
    mocks
        .keys
        .expect_find_sealed()
        .with(eq(PROJECT), eq(id))
        .returning(|_, _| Ok(Some(crate::crypto::SealedSecret(b"sealed".to_vec()))));
}

fn active_key(mocks: &mut LlmMocks, id: ProviderKeyId) {
    mocks.configs.checkpoint();
    mocks.configs.expect_get().returning(move |project| {
        Ok(EvaluationConfig { active_provider_key: Some(id), ..EvaluationConfig::default_for(project) })
    });
}

fn system(mocks: &mut LlmMocks, trial_models: &[&str]) {
    mocks.system = Some(SystemLlm {
        provider: Provider::Anthropic,
        api_key: SecretString::from("sk-ant-system"),
        model: "claude-haiku-4-5".into(),
        azure: None,
        compatible: None,
    });
    mocks.trial_models = TrialModels {
        provider: Some(Provider::Anthropic),
        models: trial_models.iter().map(|m| (*m).to_owned()).collect(),
    };
}

/// The provider answers `result` and the test sees which credentials and model were used.
fn answers(mocks: &mut LlmMocks, result: Result<Completion, CompletionError>) -> Arc<Mutex<Vec<(Provider, String)>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    mocks.completion.expect_complete().returning(move |credentials, request, _| {
        sink.lock().unwrap().push((credentials.provider, request.model.clone()));
        result.clone()
    });
    seen
}

async fn judge(mocks: LlmMocks, evaluation: &Evaluation) -> Result<(Verdict, LlmAnswer), LlmError> {
    let deadline = Instant::now() + Duration::from_secs(30);
    ask::<Verdict>(&*mocks.build(), LlmPurpose::Judge, evaluation, prompt(), deadline).await
}

async fn summarize(mocks: LlmMocks, evaluation: &Evaluation) -> Result<(Verdict, LlmAnswer), LlmError> {
    let deadline = Instant::now() + Duration::from_secs(30);
    ask::<Verdict>(&*mocks.build(), LlmPurpose::Summary, evaluation, prompt(), deadline).await
}

#[tokio::test]
async fn the_judge_uses_the_configured_key_and_model_and_the_key_pays() {
    let mut mocks = mocks();
    stored_key(&mut mocks, key_id(), Provider::Openai, KeyState::Ok);
    touched(&mut mocks, 1);
    mocks.trial_credits.expect_reserve().never();
    mocks.completion.expect_complete().times(1).returning(|credentials, request, _| {
        assert_eq!(credentials.api_key.expose_secret(), "sk-stored-key");
        assert_eq!(request.model, "gpt-5");
        assert_eq!(request.user, "Was it polite?");
        Ok(completion(json!({"verdict": true})))
    });

    let (verdict, answer) = judge(mocks, &evaluation(Some((Provider::Openai, "gpt-5", Some(key_id()))))).await.unwrap();

    assert_eq!(verdict, Verdict { verdict: true });
    assert_eq!(answer.paid_by, PaidBy::OwnKey(key_id()));
    assert_eq!((answer.provider, answer.model.as_str()), (Provider::Openai, "gpt-5"));
}

#[tokio::test]
async fn without_a_key_a_trial_model_runs_on_a_reserved_credit() {
    let mut mocks = mocks();
    system(&mut mocks, &["claude-haiku-4-5"]);
    mocks.trial_credits.expect_reserve().with(eq(PROJECT)).times(1).returning(|_| Ok(true));
    mocks.trial_credits.expect_release().never();
    let seen = answers(&mut mocks, Ok(completion(json!({"verdict": false}))));

    let (_, answer) = judge(mocks, &evaluation(None)).await.unwrap();

    assert_eq!(answer.paid_by, PaidBy::Trial);
    assert_eq!(*seen.lock().unwrap(), [(Provider::Anthropic, "claude-haiku-4-5".to_owned())]);
}

#[tokio::test]
async fn a_failed_trial_call_gives_its_credit_back() {
    let mut mocks = mocks();
    system(&mut mocks, &["claude-haiku-4-5"]);
    mocks.trial_credits.expect_reserve().times(1).returning(|_| Ok(true));
    mocks.trial_credits.expect_release().with(eq(PROJECT)).times(1).returning(|_| Ok(()));
    answers(&mut mocks, Err(CompletionError::Unavailable("503".into())));

    let error = judge(mocks, &evaluation(Some((Provider::Anthropic, "claude-haiku-4-5", None)))).await.unwrap_err();

    assert!(
        matches!(error, LlmError::Failed { error: CompletionError::Unavailable(_), paid_by: PaidBy::Trial, .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn used_up_credits_make_no_call() {
    let mut mocks = mocks();
    system(&mut mocks, &["claude-haiku-4-5"]);
    mocks.trial_credits.expect_reserve().returning(|_| Ok(false));
    mocks.completion.expect_complete().never();

    assert!(matches!(judge(mocks, &evaluation(None)).await, Err(LlmError::TrialsUsedUp)));
}

#[tokio::test]
async fn a_model_outside_the_trial_list_without_a_key_is_not_allowed() {
    let mut mocks = mocks();
    system(&mut mocks, &["claude-haiku-4-5"]);
    mocks.trial_credits.expect_reserve().never();
    mocks.completion.expect_complete().never();

    let outcome = judge(mocks, &evaluation(Some((Provider::Anthropic, "claude-opus-4", None)))).await;

    assert!(matches!(outcome, Err(LlmError::ModelNotAllowed)), "{outcome:?}");
}

#[tokio::test]
async fn the_judge_makes_no_call_with_a_configured_key_already_invalid() {
    let mut mocks = mocks();
    system(&mut mocks, &["claude-haiku-4-5"]);
    stored_key(&mut mocks, key_id(), Provider::Openai, KeyState::Invalid);
    mocks.completion.expect_complete().never();
    mocks.trial_credits.expect_reserve().never();

    let outcome = judge(mocks, &evaluation(Some((Provider::Openai, "gpt-5", Some(key_id()))))).await;

    assert!(matches!(outcome, Err(LlmError::KeyInvalid(key)) if key == key_id()), "{outcome:?}");
}

#[tokio::test]
async fn a_key_the_provider_rejects_turns_invalid() {
    let mut mocks = mocks();
    stored_key(&mut mocks, key_id(), Provider::Openai, KeyState::Ok);
    mocks
        .key_writes
        .expect_update()
        .withf(|project, id, changes| {
            *project == PROJECT && *id == key_id() && changes.state == Some(KeyState::Invalid)
        })
        .times(1)
        .returning(|_, _, _| Ok(None));
    touched(&mut mocks, 1);
    answers(&mut mocks, Err(CompletionError::KeyRejected));

    let error = summarize(mocks, &evaluation(Some((Provider::Openai, "gpt-5", Some(key_id()))))).await.unwrap_err();

    assert!(
        matches!(error, LlmError::Failed { error: CompletionError::KeyRejected, paid_by: PaidBy::OwnKey(_), .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn the_judge_takes_the_active_key_before_trial_credits() {
    let mut mocks = mocks();
    system(&mut mocks, &["claude-haiku-4-5"]);
    stored_key(&mut mocks, key_id(), Provider::Gemini, KeyState::Ok);
    active_key(&mut mocks, key_id());
    touched(&mut mocks, 1);
    mocks.trial_credits.expect_reserve().never();
    let seen = answers(&mut mocks, Ok(completion(json!({"verdict": true}))));

    let (_, answer) = judge(mocks, &evaluation(None)).await.unwrap();

    assert_eq!(answer.paid_by, PaidBy::OwnKey(key_id()));
    assert_eq!(*seen.lock().unwrap(), [(Provider::Gemini, "gemini-2.5-flash".to_owned())]);
}

/// A summary on the configured key that answers; the calls it records are kept.
fn recording_summary_on_the_configured_key() -> (LlmMocks, Arc<Mutex<Vec<LlmCallRecord>>>) {
    let mut mocks = mocks();
    system(&mut mocks, &[]);
    stored_key(&mut mocks, key_id(), Provider::Openai, KeyState::Ok);
    touched(&mut mocks, 1);
    answers(&mut mocks, Ok(completion(json!({"verdict": true}))));
    let recorded = Arc::new(Mutex::new(Vec::new()));
    let sink = recorded.clone();
    mocks.calls.checkpoint();
    mocks.calls.expect_record().returning(move |call| {
        sink.lock().unwrap().push(call.clone());
        Ok(())
    });
    (mocks, recorded)
}

#[tokio::test]
async fn a_summary_runs_on_the_configured_key_and_the_call_is_recorded() {
    let (mocks, recorded) = recording_summary_on_the_configured_key();

    let (_, answer) = summarize(mocks, &evaluation(Some((Provider::Openai, "gpt-4.1", Some(key_id()))))).await.unwrap();

    assert_eq!(answer.paid_by, PaidBy::OwnKey(key_id()));
    let calls = recorded.lock().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        (calls[0].key, calls[0].purpose, calls[0].model.as_str()),
        (Some(key_id()), LlmPurpose::Summary, "gpt-4.1")
    );
    assert_eq!((calls[0].input_tokens, calls[0].output_tokens), (100, 20));
    assert_eq!(calls[0].outcome, LlmCallOutcome::Ok);
}

#[tokio::test]
async fn a_recorded_call_is_priced_like_a_generation() {
    let (mut mocks, recorded) = recording_summary_on_the_configured_key();
    let mut table = crate::cost::MockPriceTable::new();
    table.expect_lookup().returning(|model, _| {
        (model == "gpt-4.1").then(|| crate::cost::TablePrice {
            model: model.into(),
            provider: "openai".into(),
            prices: crate::cost::TokenPrices { input: 1e-6, output: 2e-6, cache_read: None, cache_write: None },
        })
    });
    table.expect_version().returning(|| "test".into());
    mocks.prices = Some(table);

    summarize(mocks, &evaluation(Some((Provider::Openai, "gpt-4.1", Some(key_id()))))).await.unwrap();

    let (usd, source) = recorded.lock().unwrap()[0].cost.expect("priced");
    assert!((usd - (100.0 * 1e-6 + 20.0 * 2e-6)).abs() < 1e-12, "{usd}");
    assert_eq!(source, crate::cost::CostSource::Table);
}

#[tokio::test]
async fn without_a_configured_key_a_summary_runs_the_active_keys_default_model() {
    let mut mocks = mocks();
    system(&mut mocks, &[]);
    stored_key(&mut mocks, key_id(), Provider::Gemini, KeyState::Ok);
    active_key(&mut mocks, key_id());
    touched(&mut mocks, 1);
    let seen = answers(&mut mocks, Ok(completion(json!({"verdict": true}))));

    summarize(mocks, &evaluation(Some((Provider::Openai, "gpt-4.1", None)))).await.unwrap();

    assert_eq!(*seen.lock().unwrap(), [(Provider::Gemini, "gemini-2.5-flash".to_owned())]);
}

#[tokio::test]
async fn an_active_key_that_is_not_ok_falls_through_to_the_operators_llm() {
    let mut mocks = mocks();
    system(&mut mocks, &[]);
    stored_key(&mut mocks, key_id(), Provider::Openai, KeyState::Invalid);
    active_key(&mut mocks, key_id());
    mocks.keys.expect_touch_last_used().never();
    mocks.completion.expect_complete().times(1).returning(|credentials, request, _| {
        assert_eq!(credentials.api_key.expose_secret(), "sk-ant-system");
        assert_eq!(request.model, "claude-haiku-4-5");
        Ok(completion(json!({"verdict": true})))
    });

    let (_, answer) = summarize(mocks, &evaluation(None)).await.unwrap();

    assert_eq!(answer.paid_by, PaidBy::Operator);
}

#[tokio::test]
async fn an_azure_active_key_runs_the_first_deployment() {
    let mut mocks = mocks();
    stored_key(&mut mocks, key_id(), Provider::AzureOpenai, KeyState::Ok);
    mocks.cipher.checkpoint();
    mocks.cipher.expect_open().returning(|_, _| {
        Ok(SecretString::from(r#"{"api_key":"az-key","azure_endpoint":"https://r.openai.azure.com"}"#))
    });
    active_key(&mut mocks, key_id());
    touched(&mut mocks, 1);
    mocks
        .gateway
        .expect_list_models()
        .times(1)
        .returning(|_| Ok(vec![ListedModel { id: "my-deployment".into(), created: None }]));
    let seen = answers(&mut mocks, Ok(completion(json!({"verdict": true}))));

    summarize(mocks, &evaluation(None)).await.unwrap();

    assert_eq!(*seen.lock().unwrap(), [(Provider::AzureOpenai, "my-deployment".to_owned())]);
}

#[tokio::test]
async fn with_no_key_and_no_operators_llm_a_summary_has_no_llm() {
    let mut mocks = mocks();
    mocks.completion.expect_complete().never();

    assert!(matches!(summarize(mocks, &evaluation(None)).await, Err(LlmError::NoLlm)));
}

#[tokio::test]
async fn an_answer_of_the_wrong_shape_is_bad_output_and_recorded_so() {
    let mut mocks = mocks();
    system(&mut mocks, &["claude-haiku-4-5"]);
    mocks.trial_credits.expect_reserve().returning(|_| Ok(true));
    mocks.trial_credits.expect_release().times(1).returning(|_| Ok(()));
    answers(&mut mocks, Ok(completion(json!({"verdict": "maybe"}))));
    mocks.calls.checkpoint();
    mocks.calls.expect_record().withf(|call| call.outcome == LlmCallOutcome::BadOutput).times(1).returning(|_| Ok(()));

    let error = judge(mocks, &evaluation(None)).await.unwrap_err();

    assert!(matches!(error, LlmError::Failed { error: CompletionError::BadOutput(_), .. }), "{error:?}");
}

#[tokio::test]
async fn the_provider_gets_what_is_left_of_the_deadline_and_none_once_it_passed() {
    let mut mocks = mocks();
    system(&mut mocks, &[]);
    mocks.completion.expect_complete().times(1).returning(|_, _, remaining| {
        assert!(remaining <= Duration::from_secs(10) && remaining > Duration::from_secs(8), "{remaining:?}");
        Ok(completion(json!({"verdict": true})))
    });
    let llm = mocks.build();
    let deadline = Instant::now() + Duration::from_secs(10);
    ask::<Verdict>(&*llm, LlmPurpose::Report, &evaluation(None), prompt(), deadline).await.unwrap();

    let passed = Instant::now();
    let outcome = ask::<Verdict>(&*llm, LlmPurpose::Report, &evaluation(None), prompt(), passed).await;
    assert!(matches!(outcome, Err(LlmError::Failed { error: CompletionError::Timeout, .. })), "{outcome:?}");
}

#[tokio::test]
async fn only_a_trial_credit_is_refunded() {
    let mut mocks = mocks();
    mocks.trial_credits.expect_release().with(eq(PROJECT)).times(1).returning(|_| Ok(()));
    let llm = mocks.build();

    llm.refund(PROJECT, PaidBy::Trial).await.unwrap();
    llm.refund(PROJECT, PaidBy::OwnKey(key_id())).await.unwrap();
    llm.refund(PROJECT, PaidBy::Operator).await.unwrap();
}
