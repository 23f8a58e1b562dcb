use crate::invalid::{FieldError, Rule};
use std::sync::Arc;

use chrono::Utc;
use mockall::predicate::eq;

use super::*;
use crate::ModelConfigurationId;
use crate::evaluation::ModelConfiguration;
use crate::evaluation::{Conditions, EvaluationName, EvaluationType, ModelConfigurationSpec, Prompt};
use crate::evaluation::{MockEvaluationRepository, MockEvaluationWrites};
use crate::evaluation_config::{EvaluationConfig, MockEvaluationConfigRepository};
use crate::provider_key::{KeyState, MockProviderKeyRepository};

const PROJECT: ProjectId = ProjectId(7);
const ACTOR: UserId = UserId(3);

fn stored_key(provider: Provider) -> ProviderKey {
    ProviderKey { provider, ..crate::provider_key::testing::stored_key(PROJECT) }
}

/// What the repository returns for a new evaluation: the record as stored.
fn stored(record: &NewEvaluation) -> Evaluation {
    Evaluation {
        id: record.id,
        project: record.project,
        name: record.name.as_str().to_owned(),
        description: record.description.clone(),
        state: record.state,
        evaluation_type: record.evaluation_type,
        prompt: record.prompt.as_str().to_owned(),
        output_type: record.output_type,
        conditions: record.conditions.clone(),
        model_configuration: None,
        max_runs_per_hour: record.max_runs_per_hour,
        target: record.target,
        status_reason_detail: None,
        rate_limited_since: None,
        created_by: None,
        created_at: Utc::now(),
        updated_at: Utc::now(),
        deleted: false,
    }
}

fn an_evaluation() -> Evaluation {
    let record = NewEvaluation {
        id: EvaluationId::generate(),
        project: PROJECT,
        name: EvaluationName::parse("Politeness").unwrap(),
        description: String::new(),
        state: EvaluationState::Paused,
        evaluation_type: EvaluationType::LlmJudge,
        prompt: Prompt::parse("Is it polite?").unwrap(),
        output_type: OutputType::Boolean,
        conditions: Conditions::default(),
        model_configuration: None,
        max_runs_per_hour: None,
        target: crate::evaluation::EvaluationTarget::Generation,
        created_by: ACTOR,
    };
    stored(&record)
}

fn minimal_input() -> EvaluationChanges {
    EvaluationChanges {
        name: Some(EvaluationName::parse("Politeness").unwrap()),
        evaluation_type: Some(EvaluationType::LlmJudge),
        prompt: Some(Prompt::parse("Is the answer polite?").unwrap()),
        ..EvaluationChanges::default()
    }
}

fn model_configuration(provider: Provider, key: Option<ProviderKeyId>) -> Option<Option<ModelConfigurationSpec>> {
    Some(Some(ModelConfigurationSpec { provider, model: ModelName::parse("gpt-5-mini").unwrap(), provider_key: key }))
}

/// A service whose only expectations are on its writes.
fn with_writes(writes: MockEvaluationWrites) -> EvaluationService {
    service(MockEvaluationRepository::new(), writes, MockProviderKeyRepository::new())
}

/// Keys that find `key` (whatever the id asked).
fn keys_finding(key: &ProviderKey) -> MockProviderKeyRepository {
    let mut keys = MockProviderKeyRepository::new();
    let found = key.clone();
    keys.expect_find().returning(move |_, _| Ok(Some(found.clone())));
    keys
}

fn service(
    evaluations: MockEvaluationRepository,
    writes: MockEvaluationWrites,
    keys: MockProviderKeyRepository,
) -> EvaluationService {
    service_with_trial(evaluations, writes, keys, 0)
}

/// Code evaluators are not these tests' subject: the port is never asked.
fn no_code() -> Arc<crate::code::MockCodeEvaluator> {
    let mut code = crate::code::MockCodeEvaluator::new();
    code.expect_check().never();
    code.expect_run().never();
    Arc::new(code)
}

/// A service whose project has used `trial_evals_used` of its 100 trial credits.
fn service_with_trial(
    evaluations: MockEvaluationRepository,
    writes: MockEvaluationWrites,
    keys: MockProviderKeyRepository,
    trial_evals_used: i64,
) -> EvaluationService {
    let mut configs = MockEvaluationConfigRepository::new();
    configs
        .expect_get()
        .returning(move |project| Ok(EvaluationConfig { trial_evals_used, ..EvaluationConfig::default_for(project) }));
    EvaluationService::new(Arc::new(evaluations), Arc::new(writes), Arc::new(keys), Arc::new(configs), no_code())
}

fn no_writes() -> MockEvaluationWrites {
    let mut writes = MockEvaluationWrites::new();
    writes.expect_insert().never();
    writes.expect_update().never();
    writes.expect_assign_key().never();
    writes
}

#[track_caller]
fn assert_create_invalid(error: SaveEvaluationError, expected_field: &str) -> Rule {
    match error {
        SaveEvaluationError::Invalid(FieldError { field, rule }) => {
            assert_eq!(field, expected_field, "{rule:?}");
            rule
        }
        other => panic!("expected an error on {expected_field}, got {other:?}"),
    }
}

// ---- create ----

#[tokio::test]
async fn create_applies_the_defaults_paused_llm_judge_boolean_no_conditions() {
    let mut writes = MockEvaluationWrites::new();
    writes
        .expect_insert()
        .withf(|record: &NewEvaluation| {
            record.project == PROJECT
                && record.created_by == ACTOR
                && record.name.as_str() == "Politeness"
                && record.description.is_empty()
                && record.state == EvaluationState::Paused
                && record.evaluation_type == EvaluationType::LlmJudge
                && record.output_type == OutputType::Boolean
                && record.conditions.is_empty()
                && record.model_configuration.is_none()
        })
        .times(1)
        .returning(|record| Ok(SaveOutcome::Saved(Box::new(stored(record)))));

    let evaluation = with_writes(writes).create(PROJECT, ACTOR, minimal_input()).await;

    assert_eq!(evaluation.unwrap().state, EvaluationState::Paused);
}

#[tokio::test]
async fn create_enabled_makes_it_active() {
    let mut writes = MockEvaluationWrites::new();
    writes
        .expect_insert()
        .withf(|record: &NewEvaluation| record.state == EvaluationState::Active)
        .returning(|record| Ok(SaveOutcome::Saved(Box::new(stored(record)))));

    let input = EvaluationChanges { enabled: Some(true), ..minimal_input() };
    let evaluation = with_writes(writes).create(PROJECT, ACTOR, input).await.unwrap();

    assert!(evaluation.state.enabled());
}

#[tokio::test]
async fn create_requires_a_name_and_a_non_blank_prompt_before_any_write() {
    let service = service(MockEvaluationRepository::new(), no_writes(), MockProviderKeyRepository::new());

    let missing_name = EvaluationChanges { name: None, ..minimal_input() };
    assert_create_invalid(service.create(PROJECT, ACTOR, missing_name).await.unwrap_err(), "name");
    let missing_type = EvaluationChanges { evaluation_type: None, ..minimal_input() };
    assert_create_invalid(service.create(PROJECT, ACTOR, missing_type).await.unwrap_err(), "evaluation_type");
    let no_config = EvaluationChanges { prompt: None, ..minimal_input() };
    let rule = assert_create_invalid(service.create(PROJECT, ACTOR, no_config).await.unwrap_err(), "evaluation_config");
    assert_eq!(rule, Rule::Required);
}

#[tokio::test]
async fn create_passes_the_model_configuration_with_its_key() {
    let key = ProviderKeyId::generate();
    let mut writes = MockEvaluationWrites::new();
    writes
        .expect_insert()
        .withf(move |record: &NewEvaluation| {
            record.model_configuration
                == Some(ModelConfigurationSpec {
                    provider: Provider::Gemini,
                    model: ModelName::parse("gpt-5-mini").unwrap(),
                    provider_key: Some(key),
                })
        })
        .returning(|record| Ok(SaveOutcome::Saved(Box::new(stored(record)))));

    let input =
        EvaluationChanges { model_configuration: model_configuration(Provider::Gemini, Some(key)), ..minimal_input() };
    with_writes(writes).create(PROJECT, ACTOR, input).await.unwrap();
}

#[tokio::test]
async fn create_reports_a_key_of_another_project_or_provider_on_provider_key_id() {
    for (outcome, expected) in [
        (SaveOutcome::KeyNotFound, Rule::KeyNotFound),
        (
            SaveOutcome::KeyProviderMismatch { key_provider: Provider::Anthropic },
            Rule::KeyOfOtherProvider { key_provider: Provider::Anthropic, configured: Some(Provider::Openai) },
        ),
    ] {
        let repo = MockEvaluationRepository::new();
        let mut writes = MockEvaluationWrites::new();
        writes.expect_insert().returning(move |_| Ok(outcome.clone()));
        let input = EvaluationChanges {
            model_configuration: model_configuration(Provider::Openai, Some(ProviderKeyId::generate())),
            ..minimal_input()
        };

        let error =
            service(repo, writes, MockProviderKeyRepository::new()).create(PROJECT, ACTOR, input).await.unwrap_err();

        assert_eq!(assert_create_invalid(error, "model_configuration.provider_key_id"), expected);
    }
}

// ---- update / replace ----

#[tokio::test]
async fn update_sends_only_the_fields_given() {
    let id = EvaluationId::generate();
    let mut writes = MockEvaluationWrites::new();
    writes
        .expect_update()
        .withf(move |project, evaluation, changes: &EvaluationChanges| {
            *project == PROJECT
                && *evaluation == id
                && *changes
                    == EvaluationChanges {
                        enabled: Some(false),
                        model_configuration: Some(None),
                        description: Some("why".into()),
                        ..EvaluationChanges::default()
                    }
        })
        .times(1)
        .returning(|_, _, _| Ok(SaveOutcome::Saved(Box::new(an_evaluation()))));

    let input = EvaluationChanges {
        enabled: Some(false),
        model_configuration: Some(None),
        description: Some("why".into()),
        ..EvaluationChanges::default()
    };
    with_writes(writes).update(PROJECT, id, input).await.unwrap();
}

#[tokio::test]
async fn update_with_nothing_to_change_reads_instead_of_writing() {
    let existing = an_evaluation();
    let mut repo = MockEvaluationRepository::new();
    let mut writes = MockEvaluationWrites::new();
    writes.expect_update().never();
    let returned = existing.clone();
    repo.expect_find().with(eq(PROJECT), eq(existing.id)).returning(move |_, _| Ok(Some(returned.clone())));

    let service = service(repo, writes, MockProviderKeyRepository::new());

    let read = service.update(PROJECT, existing.id, EvaluationChanges::default()).await;

    assert_eq!(read.unwrap(), existing);
}

#[tokio::test]
async fn update_with_deleted_true_soft_deletes_in_the_same_write() {
    let mut writes = MockEvaluationWrites::new();
    writes
        .expect_update()
        .withf(|_, _, changes: &EvaluationChanges| changes.delete && changes.name.is_some())
        .returning(|_, _, _| Ok(SaveOutcome::Saved(Box::new(Evaluation { deleted: true, ..an_evaluation() }))));

    let input = EvaluationChanges {
        delete: true,
        name: Some(EvaluationName::parse("Gone").unwrap()),
        ..EvaluationChanges::default()
    };
    let evaluation = with_writes(writes).update(PROJECT, EvaluationId::generate(), input).await;

    assert!(evaluation.unwrap().deleted);
}

#[tokio::test]
async fn update_of_a_missing_evaluation_is_not_found() {
    let mut repo = MockEvaluationRepository::new();
    let mut writes = MockEvaluationWrites::new();
    repo.expect_find().returning(|_, _| Ok(None));
    writes.expect_update().never();
    let input = EvaluationChanges { enabled: Some(true), ..EvaluationChanges::default() };

    let service = service(repo, writes, MockProviderKeyRepository::new());

    let error = service.update(PROJECT, EvaluationId::generate(), input).await;

    assert!(matches!(error.unwrap_err(), SaveEvaluationError::NotFound));
}

#[tokio::test]
async fn update_reports_a_foreign_key_on_provider_key_id() {
    let repo = MockEvaluationRepository::new();
    let mut writes = MockEvaluationWrites::new();
    writes.expect_update().returning(|_, _, _| Ok(SaveOutcome::KeyNotFound));
    let input = EvaluationChanges {
        model_configuration: model_configuration(Provider::Openai, Some(ProviderKeyId::generate())),
        ..EvaluationChanges::default()
    };

    let service = service(repo, writes, MockProviderKeyRepository::new());

    let error = service.update(PROJECT, EvaluationId::generate(), input).await;

    assert!(matches!(
        error.unwrap_err(),
        SaveEvaluationError::Invalid(FieldError { field, .. }) if field == "model_configuration.provider_key_id"
    ));
}

// ---- get ----

#[tokio::test]
async fn get_of_a_missing_or_deleted_evaluation_is_not_found() {
    let mut repo = MockEvaluationRepository::new();
    repo.expect_find().returning(|_, _| Ok(None));

    let error =
        service(repo, no_writes(), MockProviderKeyRepository::new()).get(PROJECT, EvaluationId::generate()).await;

    assert!(matches!(error.unwrap_err(), GetEvaluationError::NotFound));
}

// ---- dependent_configs ----

#[tokio::test]
async fn dependent_configs_of_an_unknown_key_is_not_found() {
    let mut keys = MockProviderKeyRepository::new();
    keys.expect_find().returning(|_, _| Ok(None));
    let mut repo = MockEvaluationRepository::new();
    repo.expect_using_key().never();

    let error = service(repo, no_writes(), keys).dependent_configs(PROJECT, ProviderKeyId::generate()).await;

    assert!(matches!(error.unwrap_err(), DependentConfigsError::NotFound));
}

#[tokio::test]
async fn dependent_configs_lists_the_other_usable_keys_of_the_provider() {
    let key = stored_key(Provider::Anthropic);
    let other = stored_key(Provider::Anthropic);
    let dependent = DependentEvaluation {
        id: EvaluationId::generate(),
        name: "judge".into(),
        model_configuration: crate::ModelConfigurationId::generate(),
    };
    let mut keys = keys_finding(&key);
    let listed = vec![key.clone(), other.clone()];
    keys.expect_list_usable().with(eq(PROJECT), eq(Provider::Anthropic)).returning(move |_, _| Ok(listed.clone()));
    let mut repo = MockEvaluationRepository::new();
    let dependents = vec![dependent.clone()];
    repo.expect_using_key().with(eq(PROJECT), eq(key.id)).returning(move |_, _| Ok(dependents.clone()));

    let configs = service(repo, no_writes(), keys).dependent_configs(PROJECT, key.id).await.unwrap();

    assert_eq!(configs.evaluations, [dependent]);
    assert_eq!(configs.alternative_keys, [other], "the key itself is no alternative");
}

// ---- trial_evaluations ----

#[tokio::test]
async fn trial_evaluations_need_a_known_provider() {
    let mut repo = MockEvaluationRepository::new();
    repo.expect_on_trial_credits().never();
    let service = service(repo, no_writes(), MockProviderKeyRepository::new());

    for raw in [None, Some(""), Some("  ")] {
        let error = service.trial_evaluations(PROJECT, raw).await.unwrap_err();
        assert!(matches!(error, TrialEvaluationsError::MissingProvider), "{error:?}");
    }
    let error = service.trial_evaluations(PROJECT, Some("mistral")).await.unwrap_err();
    assert!(matches!(&error, TrialEvaluationsError::UnsupportedProvider(given) if given == "mistral"), "{error:?}");
}

#[tokio::test]
async fn trial_evaluations_of_openai_include_unconfigured_ones_and_stop_at_50() {
    let mut repo = MockEvaluationRepository::new();
    repo.expect_on_trial_credits()
        .with(eq(PROJECT), eq(Provider::Openai), eq(true), eq(50))
        .times(1)
        .returning(|_, _, _, _| Ok(vec![]));
    repo.expect_on_trial_credits()
        .with(eq(PROJECT), eq(Provider::Gemini), eq(false), eq(50))
        .times(1)
        .returning(|_, _, _, _| Ok(vec![]));
    let service = service(repo, no_writes(), MockProviderKeyRepository::new());

    service.trial_evaluations(PROJECT, Some("OpenAI")).await.unwrap();
    service.trial_evaluations(PROJECT, Some("google")).await.unwrap();
}

// ---- assign_key ----

#[tokio::test]
async fn assign_of_an_unknown_key_is_not_found_and_writes_nothing() {
    let mut keys = MockProviderKeyRepository::new();
    keys.expect_find().returning(|_, _| Ok(None));
    let request = AssignKeyCommand { evaluations: vec![EvaluationId::generate()], enable: true };

    let error = service(MockEvaluationRepository::new(), no_writes(), keys)
        .assign_key(PROJECT, ProviderKeyId::generate(), request, ACTOR)
        .await;

    assert!(matches!(error.unwrap_err(), AssignKeyError::NotFound));
}

#[tokio::test]
async fn assigning_an_openai_key_configures_unconfigured_evaluations_with_the_default_judge_model() {
    let key = stored_key(Provider::Openai);
    let evaluation = EvaluationId::generate();
    let keys = keys_finding(&key);
    let mut writes = MockEvaluationWrites::new();
    writes
        .expect_assign_key()
        .with(
            eq(PROJECT),
            eq(key.id),
            eq(KeyAssignment {
                actor: Some(ACTOR),
                evaluations: vec![evaluation],
                enable: true,
                model_for_unconfigured: Some(ModelName::parse("gpt-5-mini").unwrap()),
            }),
        )
        .times(1)
        .returning(|_, _, _| Ok(AssignOutcome::Assigned { configs_updated: 1, evals_enabled: 1 }));
    let request = AssignKeyCommand { evaluations: vec![evaluation], enable: true };

    let result = service(MockEvaluationRepository::new(), writes, keys)
        .assign_key(PROJECT, key.id, request, ACTOR)
        .await
        .unwrap();

    assert_eq!(result, AssignResult { configs_updated: 1, evals_enabled: 1 });
}

#[tokio::test]
async fn assigning_another_providers_key_creates_no_configurations() {
    let key = stored_key(Provider::Anthropic);
    let keys = keys_finding(&key);
    let mut writes = MockEvaluationWrites::new();
    writes
        .expect_assign_key()
        .withf(|_, _, assignment: &KeyAssignment| assignment.model_for_unconfigured.is_none() && !assignment.enable)
        .returning(|_, _, _| Ok(AssignOutcome::KeyNotFound));
    let request = AssignKeyCommand { evaluations: vec![EvaluationId::generate()], enable: false };

    let error = service(MockEvaluationRepository::new(), writes, keys)
        .assign_key(PROJECT, key.id, request, ACTOR)
        .await
        .unwrap_err();

    assert!(matches!(error, AssignKeyError::NotFound), "a key deleted meanwhile is not found");
}

// ---- enabling guards ----

fn paused_in(state: EvaluationState, key: Option<ProviderKeyId>) -> Evaluation {
    Evaluation {
        state,
        model_configuration: Some(ModelConfiguration {
            id: ModelConfigurationId::generate(),
            provider: Provider::Openai,
            model: "gpt-5-mini".into(),
            provider_key: key,
        }),
        ..an_evaluation()
    }
}

fn enable() -> EvaluationChanges {
    EvaluationChanges { enabled: Some(true), ..EvaluationChanges::default() }
}

#[tokio::test]
async fn enabling_on_used_up_trial_credits_is_refused_before_any_write() {
    let mut repo = MockEvaluationRepository::new();
    repo.expect_find().returning(|_, _| Ok(Some(paused_in(EvaluationState::Paused, None))));
    let service = service_with_trial(repo, no_writes(), MockProviderKeyRepository::new(), 100);

    let error = service.update(PROJECT, EvaluationId::generate(), enable()).await.unwrap_err();
    assert!(matches!(error, SaveEvaluationError::EnableRefused(EnableRefusal::TrialLimitReached)), "{error:?}");
    let created = EvaluationChanges { enabled: Some(true), ..minimal_input() };
    let error = service.create(PROJECT, ACTOR, created).await.unwrap_err();
    assert!(matches!(error, SaveEvaluationError::EnableRefused(EnableRefusal::TrialLimitReached)), "{error:?}");
}

#[tokio::test]
async fn enabling_with_a_key_or_credits_left_or_a_usable_active_key_is_allowed() {
    let enabled = |_: ProjectId, _: EvaluationId, changes: &EvaluationChanges| {
        assert_eq!(changes.enabled, Some(true));
        Ok(SaveOutcome::Saved(Box::new(Evaluation { state: EvaluationState::Active, ..an_evaluation() })))
    };
    let cases: [(Option<ProviderKeyId>, i64, Option<KeyState>); 3] =
        [(Some(ProviderKeyId::generate()), 100, None), (None, 99, None), (None, 100, Some(KeyState::Ok))];
    for (key, used, active) in cases {
        let mut repo = MockEvaluationRepository::new();
        let mut writes = MockEvaluationWrites::new();
        repo.expect_find().returning(move |_, _| Ok(Some(paused_in(EvaluationState::Paused, key))));
        writes.expect_update().times(1).returning(enabled);
        let mut keys = MockProviderKeyRepository::new();
        keys.expect_find()
            .returning(move |_, _| Ok(active.map(|state| ProviderKey { state, ..stored_key(Provider::Openai) })));
        let mut configs = MockEvaluationConfigRepository::new();
        configs.expect_get().returning(move |project| {
            Ok(EvaluationConfig {
                trial_evals_used: used,
                active_provider_key: active.map(|_| ProviderKeyId::generate()),
                ..EvaluationConfig::default_for(project)
            })
        });
        let service =
            EvaluationService::new(Arc::new(repo), Arc::new(writes), Arc::new(keys), Arc::new(configs), no_code());

        let evaluation = service.update(PROJECT, EvaluationId::generate(), enable()).await;

        assert!(evaluation.unwrap().state.enabled(), "key {key:?}, used {used}, active {active:?}");
    }
}

#[tokio::test]
async fn an_active_key_that_is_not_ok_does_not_lift_the_trial_guard() {
    let mut repo = MockEvaluationRepository::new();
    repo.expect_find().returning(|_, _| Ok(Some(paused_in(EvaluationState::Paused, None))));
    let mut keys = MockProviderKeyRepository::new();
    keys.expect_find()
        .returning(|_, _| Ok(Some(ProviderKey { state: KeyState::Invalid, ..stored_key(Provider::Openai) })));
    let mut configs = MockEvaluationConfigRepository::new();
    configs.expect_get().returning(|project| {
        Ok(EvaluationConfig {
            trial_evals_used: 100,
            active_provider_key: Some(ProviderKeyId::generate()),
            ..EvaluationConfig::default_for(project)
        })
    });
    let service =
        EvaluationService::new(Arc::new(repo), Arc::new(no_writes()), Arc::new(keys), Arc::new(configs), no_code());

    let error = service.update(PROJECT, EvaluationId::generate(), enable()).await.unwrap_err();

    assert!(matches!(error, SaveEvaluationError::EnableRefused(EnableRefusal::TrialLimitReached)));
}

#[tokio::test]
async fn re_enabling_after_a_deleted_key_needs_a_key_in_the_configuration() {
    let deleted = EvaluationState::Error(StatusReason::ProviderKeyDeleted);
    let mut repo = MockEvaluationRepository::new();
    repo.expect_find().returning(move |_, _| Ok(Some(paused_in(deleted, None))));
    let service = service(repo, no_writes(), MockProviderKeyRepository::new());

    let error = service.update(PROJECT, EvaluationId::generate(), enable()).await.unwrap_err();
    assert!(matches!(error, SaveEvaluationError::EnableRefused(EnableRefusal::ProviderKeyMissing)), "{error:?}");

    let key = ProviderKeyId::generate();
    let mut repo = MockEvaluationRepository::new();
    repo.expect_find().returning(move |_, _| Ok(Some(paused_in(deleted, None))));
    let mut writes = MockEvaluationWrites::new();
    writes.expect_update().times(1).returning(|_, _, _| {
        Ok(SaveOutcome::Saved(Box::new(Evaluation { state: EvaluationState::Active, ..an_evaluation() })))
    });
    let with_key =
        EvaluationChanges { model_configuration: model_configuration(Provider::Openai, Some(key)), ..enable() };
    let evaluation = service_with_trial(repo, writes, MockProviderKeyRepository::new(), 0)
        .update(PROJECT, EvaluationId::generate(), with_key)
        .await;
    assert!(evaluation.unwrap().state.enabled());
}

#[tokio::test]
async fn an_evaluation_already_enabled_is_not_guarded() {
    let mut repo = MockEvaluationRepository::new();
    let mut writes = MockEvaluationWrites::new();
    repo.expect_find().returning(|_, _| Ok(Some(paused_in(EvaluationState::Active, None))));
    writes.expect_update().times(1).returning(|_, _, _| {
        Ok(SaveOutcome::Saved(Box::new(Evaluation { state: EvaluationState::Active, ..an_evaluation() })))
    });

    let evaluation = service_with_trial(repo, writes, MockProviderKeyRepository::new(), 100)
        .update(PROJECT, EvaluationId::generate(), enable())
        .await;

    assert!(evaluation.unwrap().state.enabled());
}
