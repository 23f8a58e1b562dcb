//! `PgEvaluationRepository` and the evaluation statements under the domain's writes: every
//! method, the state invariants, the model configuration's key checks, and project
//! isolation for each of them.

use domain::evaluation::{
    AssignOutcome, ConditionInput, Conditions, Evaluation, EvaluationChanges, EvaluationListFilter, EvaluationName,
    EvaluationRepository, EvaluationState, EvaluationType, JudgeStop, KeyAssignment, MaxRunsPerHour,
    ModelConfigurationSpec, ModelName, NewEvaluation, OutputType, Prompt, PropertyFilterInput, SaveOutcome,
    StatusReason,
};
use domain::provider_key::{KeyState, Provider};
use domain::{EvaluationId, PageRequest, ProviderKeyId};
use serde_json::json;
use uuid::Uuid;

use crate::support::{Evaluations, Tenant, TestApp};

/// The repository and the writes under test, on the test's database.
pub fn evaluations(app: &TestApp) -> Evaluations {
    Evaluations::new(app.pool())
}

/// A paused llm_judge evaluation of the tenant, created by its admin, without conditions
/// or model configuration.
pub fn new_evaluation(tenant: &Tenant) -> NewEvaluation {
    NewEvaluation {
        id: EvaluationId::generate(),
        project: tenant.id(),
        name: EvaluationName::parse("Politeness").unwrap(),
        description: "Checks tone".to_owned(),
        state: EvaluationState::Paused,
        evaluation_type: EvaluationType::LlmJudge,
        prompt: Prompt::parse("Is the answer polite?").unwrap(),
        output_type: OutputType::Boolean,
        conditions: Conditions::default(),
        model_configuration: None,
        max_runs_per_hour: None,
        target: domain::evaluation::EvaluationTarget::Generation,
        created_by: tenant.admin.id,
    }
}

/// A model configuration of `provider` with `key` (none: trial credits).
pub fn spec(provider: Provider, key: Option<ProviderKeyId>) -> ModelConfigurationSpec {
    ModelConfigurationSpec { provider, model: ModelName::parse("judge-model").unwrap(), provider_key: key }
}

/// Inserts the record, which must be accepted.
pub async fn insert(app: &TestApp, record: NewEvaluation) -> Evaluation {
    match evaluations(app).insert(&record).await.unwrap() {
        SaveOutcome::Saved(evaluation) => *evaluation,
        other => panic!("insert refused: {other:?}"),
    }
}

/// An evaluation of the tenant in `state` whose model configuration uses `key`.
pub async fn insert_using_key(
    app: &TestApp,
    tenant: &Tenant,
    provider: Provider,
    key: Option<ProviderKeyId>,
    state: EvaluationState,
) -> Evaluation {
    insert(app, NewEvaluation { state, model_configuration: Some(spec(provider, key)), ..new_evaluation(tenant) }).await
}

/// Puts a stored evaluation into a state as the judge runner would.
pub async fn set_state(app: &TestApp, id: EvaluationId, state: EvaluationState) {
    sqlx::query("UPDATE evaluations SET enabled = $2, status = $3, status_reason = $4 WHERE id = $1")
        .bind(id.0)
        .bind(state.enabled())
        .bind(state.status().as_str())
        .bind(state.reason().map(StatusReason::as_str))
        .execute(app.pool())
        .await
        .unwrap();
}

/// The live evaluation as the repository reads it.
pub async fn stored(app: &TestApp, tenant: &Tenant, id: EvaluationId) -> Evaluation {
    evaluations(app).find(tenant.id(), id).await.unwrap().expect("a live evaluation")
}

/// Columns of a row read without the repository (it hides deleted rows):
/// `(deleted, status, key of its model configuration)`.
async fn raw_row(app: &TestApp, id: EvaluationId) -> (bool, String, Option<Uuid>) {
    sqlx::query_as(
        "SELECT e.deleted, e.status, m.provider_key_id FROM evaluations e \
         LEFT JOIN model_configurations m ON m.id = e.model_configuration_id WHERE e.id = $1",
    )
    .bind(id.0)
    .fetch_one(app.pool())
    .await
    .unwrap()
}

async fn model_configurations(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM model_configurations").fetch_one(app.pool()).await.unwrap()
}

async fn evaluation_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM evaluations").fetch_one(app.pool()).await.unwrap()
}

fn ignoring_updated_at(after: &Evaluation, before: &Evaluation) -> Evaluation {
    Evaluation { updated_at: before.updated_at, ..after.clone() }
}

// ---- insert ----

#[tokio::test]
async fn insert_returns_the_stored_evaluation_with_its_creator_and_configuration() {
    let (app, tenant) = TestApp::with_tenant().await;
    let key = app.insert_key(tenant.key().provider(Provider::Anthropic)).await;
    let conditions = Conditions::parse(&[ConditionInput {
        id: Some("c1".into()),
        rollout_percentage: Some(12.5),
        properties: Some(vec![PropertyFilterInput {
            key: Some("$ai_model".into()),
            operator: Some("regex".into()),
            value: Some(json!("^claude")),
        }]),
    }])
    .unwrap();
    let record = NewEvaluation {
        state: EvaluationState::Active,
        output_type: OutputType::BooleanWithNa,
        conditions: conditions.clone(),
        model_configuration: Some(spec(Provider::Anthropic, Some(key.id))),
        ..new_evaluation(&tenant)
    };

    let evaluation = insert(&app, record.clone()).await;

    assert_eq!(evaluation.id, record.id);
    assert_eq!(evaluation.project, tenant.id());
    assert_eq!(evaluation.name, "Politeness");
    assert_eq!(evaluation.description, "Checks tone");
    assert_eq!(evaluation.state, EvaluationState::Active);
    assert_eq!(evaluation.evaluation_type, EvaluationType::LlmJudge);
    assert_eq!(evaluation.prompt, "Is the answer polite?");
    assert_eq!(evaluation.output_type, OutputType::BooleanWithNa);
    assert_eq!(evaluation.conditions, conditions);
    let configuration = evaluation.model_configuration.clone().expect("a model configuration");
    assert_eq!(
        (configuration.provider, configuration.model.as_str(), configuration.provider_key),
        (Provider::Anthropic, "judge-model", Some(key.id))
    );
    assert_eq!(evaluation.created_by, Some(tenant.admin_summary()));
    assert!(!evaluation.deleted);
    assert_eq!(evaluation.created_at, evaluation.updated_at);
    assert_eq!(evaluations(&app).find(tenant.id(), record.id).await.unwrap(), Some(evaluation));
}

#[tokio::test]
async fn insert_without_a_model_configuration_stores_none() {
    let (app, tenant) = TestApp::with_tenant().await;

    let evaluation = insert(&app, new_evaluation(&tenant)).await;

    assert_eq!(evaluation.model_configuration, None);
    assert_eq!(evaluation.state, EvaluationState::Paused);
    assert_eq!(model_configurations(&app).await, 0);
}

#[tokio::test]
async fn insert_with_a_keyless_configuration_runs_on_trial_credits() {
    let (app, tenant) = TestApp::with_tenant().await;

    let evaluation = insert_using_key(&app, &tenant, Provider::Openai, None, EvaluationState::Paused).await;

    assert_eq!(evaluation.model_configuration.unwrap().provider_key, None);
}

#[tokio::test]
async fn insert_refuses_another_projects_key_and_stores_nothing() {
    let (app, tenant) = TestApp::with_tenant().await;
    let other = app.project_with_admin().await;
    let foreign = app.insert_key(other.key()).await;
    let record = NewEvaluation {
        model_configuration: Some(spec(Provider::Openai, Some(foreign.id))),
        ..new_evaluation(&tenant)
    };

    let outcome = evaluations(&app).insert(&record).await.unwrap();

    assert_eq!(outcome, SaveOutcome::KeyNotFound);
    assert_eq!((evaluation_count(&app).await, model_configurations(&app).await), (0, 0));
}

#[tokio::test]
async fn insert_refuses_an_unknown_key_and_stores_nothing() {
    let (app, tenant) = TestApp::with_tenant().await;
    let record = NewEvaluation {
        model_configuration: Some(spec(Provider::Openai, Some(ProviderKeyId::generate()))),
        ..new_evaluation(&tenant)
    };

    assert_eq!(evaluations(&app).insert(&record).await.unwrap(), SaveOutcome::KeyNotFound);
    assert_eq!(evaluation_count(&app).await, 0);
}

#[tokio::test]
async fn insert_refuses_a_key_of_another_provider_and_stores_nothing() {
    let (app, tenant) = TestApp::with_tenant().await;
    let gemini = app.insert_key(tenant.key().provider(Provider::Gemini)).await;
    let record =
        NewEvaluation { model_configuration: Some(spec(Provider::Openai, Some(gemini.id))), ..new_evaluation(&tenant) };

    let outcome = evaluations(&app).insert(&record).await.unwrap();

    assert_eq!(outcome, SaveOutcome::KeyProviderMismatch { key_provider: Provider::Gemini });
    assert_eq!((evaluation_count(&app).await, model_configurations(&app).await), (0, 0));
}

// ---- find ----

#[tokio::test]
async fn find_never_returns_another_projects_or_a_deleted_evaluation() {
    let app = TestApp::migrated().await;
    let owner = app.project_with_admin().await;
    let intruder = app.project_with_admin().await;
    let evaluation = insert(&app, new_evaluation(&owner)).await;
    let doomed = insert(&app, new_evaluation(&owner)).await;
    evaluations(&app).soft_delete(owner.id(), doomed.id).await.unwrap();

    assert_eq!(evaluations(&app).find(intruder.id(), evaluation.id).await.unwrap(), None);
    assert_eq!(evaluations(&app).find(owner.id(), doomed.id).await.unwrap(), None);
    assert_eq!(evaluations(&app).find(owner.id(), EvaluationId::generate()).await.unwrap(), None);
    assert!(evaluations(&app).find(owner.id(), evaluation.id).await.unwrap().is_some());
}

// ---- list ----

#[tokio::test]
async fn list_returns_the_projects_live_evaluations_newest_first_with_the_total() {
    let (app, tenant) = TestApp::with_tenant().await;
    let other = app.project_with_admin().await;
    let oldest = insert(&app, new_evaluation(&tenant)).await;
    let deleted = insert(&app, new_evaluation(&tenant)).await;
    let newest = insert(&app, new_evaluation(&tenant)).await;
    insert(&app, new_evaluation(&other)).await;
    evaluations(&app).soft_delete(tenant.id(), deleted.id).await.unwrap();

    let page =
        evaluations(&app).list(tenant.id(), &EvaluationListFilter::default(), PageRequest::default()).await.unwrap();

    assert_eq!(page.total, 2);
    assert_eq!(page.items, [newest, oldest]);
}

#[tokio::test]
async fn list_breaks_ties_on_created_at_by_ascending_id_and_pages() {
    let (app, tenant) = TestApp::with_tenant().await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(insert(&app, new_evaluation(&tenant)).await.id);
    }
    sqlx::query("UPDATE evaluations SET created_at = '2025-01-01T00:00:00Z'").execute(app.pool()).await.unwrap();
    ids.sort();

    let first =
        evaluations(&app).list(tenant.id(), &EvaluationListFilter::default(), PageRequest::new(2, 0)).await.unwrap();
    let last =
        evaluations(&app).list(tenant.id(), &EvaluationListFilter::default(), PageRequest::new(2, 4)).await.unwrap();

    assert_eq!(first.items.iter().map(|e| e.id).collect::<Vec<_>>(), ids[..2]);
    assert_eq!(last.items.iter().map(|e| e.id).collect::<Vec<_>>(), ids[4..]);
    assert_eq!((first.total, last.total), (5, 5));
}

#[tokio::test]
async fn list_filters_by_text_in_name_or_description_and_by_enabled_and_counts_what_it_keeps() {
    let (app, tenant) = TestApp::with_tenant().await;
    let named = |name: &str, description: &str, state: EvaluationState| NewEvaluation {
        name: EvaluationName::parse(name).unwrap(),
        description: description.to_owned(),
        state,
        ..new_evaluation(&tenant)
    };
    let accuracy = insert(&app, named("Accuracy check", "Tests accuracy", EvaluationState::Active)).await;
    let speed = insert(&app, named("Speed", "Tests PERFORMANCE", EvaluationState::Paused)).await;
    let literal = insert(&app, named("100% _literal_", "", EvaluationState::Paused)).await;
    let project = tenant.id();
    let list = |search: Option<&str>, enabled: Option<bool>| {
        let filter = EvaluationListFilter { search: search.map(str::to_owned), enabled };
        let repository = evaluations(&app);
        async move {
            let page = repository.list(project, &filter, PageRequest::new(1, 0)).await.unwrap();
            (page.total, page.items.into_iter().map(|e| e.id).collect::<Vec<_>>())
        }
    };

    assert_eq!(list(Some("ACCURACY"), None).await, (1, vec![accuracy.id]));
    assert_eq!(list(Some("performance"), None).await, (1, vec![speed.id]));
    assert_eq!(list(Some("tests"), None).await.0, 2);
    assert_eq!(list(Some("0%"), None).await, (1, vec![literal.id]), "% is matched as text");
    assert_eq!(list(Some("_l"), None).await, (1, vec![literal.id]), "_ is matched as text");
    assert_eq!(list(None, Some(true)).await, (1, vec![accuracy.id]));
    assert_eq!(list(None, Some(false)).await.0, 2);
    assert_eq!(list(Some("tests"), Some(false)).await, (1, vec![speed.id]));
    assert_eq!(list(Some("nothing like it"), None).await, (0, vec![]));
}

// ---- update ----

#[tokio::test]
async fn update_changes_only_the_given_fields() {
    let (app, tenant) = TestApp::with_tenant().await;
    let before = insert(&app, new_evaluation(&tenant)).await;
    let conditions = Conditions::parse(&[ConditionInput::default()]).unwrap();
    let changes = EvaluationChanges {
        name: Some(EvaluationName::parse("Renamed").unwrap()),
        prompt: Some(Prompt::parse("Is it correct?").unwrap()),
        output_type: Some(OutputType::BooleanWithNa),
        conditions: Some(conditions.clone()),
        ..EvaluationChanges::default()
    };

    let SaveOutcome::Saved(after) = evaluations(&app).update(tenant.id(), before.id, &changes).await.unwrap() else {
        panic!("update refused");
    };

    assert!(after.updated_at > before.updated_at);
    assert_eq!(
        ignoring_updated_at(&after, &before),
        Evaluation {
            name: "Renamed".into(),
            prompt: "Is it correct?".into(),
            output_type: OutputType::BooleanWithNa,
            conditions,
            ..before.clone()
        }
    );
    assert_eq!(evaluations(&app).find(tenant.id(), before.id).await.unwrap(), Some(*after));
}

#[tokio::test]
async fn update_derives_the_state_from_enabled_on_the_stored_row() {
    let (app, tenant) = TestApp::with_tenant().await;
    let evaluation = insert(&app, new_evaluation(&tenant)).await;
    let repo = evaluations(&app);
    let error = EvaluationState::Error(StatusReason::ProviderKeyInvalid);
    let write = |enabled: Option<bool>| EvaluationChanges {
        enabled,
        description: Some("touched".into()),
        ..EvaluationChanges::default()
    };
    let state_after = |outcome: SaveOutcome| match outcome {
        SaveOutcome::Saved(evaluation) => evaluation.state,
        other => panic!("refused: {other:?}"),
    };

    set_state(&app, evaluation.id, error).await;
    assert_eq!(state_after(repo.update(tenant.id(), evaluation.id, &write(None)).await.unwrap()), error);
    assert_eq!(state_after(repo.update(tenant.id(), evaluation.id, &write(Some(false))).await.unwrap()), error);
    assert_eq!(
        state_after(repo.update(tenant.id(), evaluation.id, &write(Some(true))).await.unwrap()),
        EvaluationState::Active,
        "enabling clears the error"
    );
    assert_eq!(
        state_after(repo.update(tenant.id(), evaluation.id, &write(Some(false))).await.unwrap()),
        EvaluationState::Paused
    );
}

#[tokio::test]
async fn update_replaces_the_model_configuration_in_place_adds_and_removes_it() {
    let (app, tenant) = TestApp::with_tenant().await;
    let key = app.insert_key(tenant.key().provider(Provider::Gemini)).await;
    let evaluation = insert(&app, new_evaluation(&tenant)).await;
    let repo = evaluations(&app);
    let set = |configuration| EvaluationChanges { model_configuration: Some(configuration), ..Default::default() };
    let configuration_of = |outcome: SaveOutcome| match outcome {
        SaveOutcome::Saved(evaluation) => evaluation.model_configuration,
        other => panic!("refused: {other:?}"),
    };

    let added = configuration_of(
        repo.update(tenant.id(), evaluation.id, &set(Some(spec(Provider::Openai, None)))).await.unwrap(),
    )
    .expect("added");
    assert_eq!((added.provider, added.provider_key), (Provider::Openai, None));

    let replaced = configuration_of(
        repo.update(tenant.id(), evaluation.id, &set(Some(spec(Provider::Gemini, Some(key.id))))).await.unwrap(),
    )
    .expect("replaced");
    assert_eq!(replaced.id, added.id, "replaced in place");
    assert_eq!((replaced.provider, replaced.provider_key), (Provider::Gemini, Some(key.id)));
    assert_eq!(model_configurations(&app).await, 1);

    let kept = configuration_of(
        repo.update(tenant.id(), evaluation.id, &EvaluationChanges { enabled: Some(true), ..Default::default() })
            .await
            .unwrap(),
    );
    assert_eq!(kept, Some(replaced));

    assert_eq!(configuration_of(repo.update(tenant.id(), evaluation.id, &set(None)).await.unwrap()), None);
    assert_eq!(model_configurations(&app).await, 0, "a removed configuration is deleted");
}

#[tokio::test]
async fn update_refuses_a_foreign_or_mismatched_key_and_changes_nothing() {
    let (app, tenant) = TestApp::with_tenant().await;
    let other = app.project_with_admin().await;
    let foreign = app.insert_key(other.key()).await;
    let anthropic = app.insert_key(tenant.key().provider(Provider::Anthropic)).await;
    let before = insert_using_key(&app, &tenant, Provider::Openai, None, EvaluationState::Paused).await;

    for (key, expected) in [
        (foreign.id, SaveOutcome::KeyNotFound),
        (anthropic.id, SaveOutcome::KeyProviderMismatch { key_provider: Provider::Anthropic }),
    ] {
        let changes = EvaluationChanges {
            name: Some(EvaluationName::parse("Renamed").unwrap()),
            enabled: Some(true),
            model_configuration: Some(Some(spec(Provider::Openai, Some(key)))),
            ..EvaluationChanges::default()
        };
        assert_eq!(evaluations(&app).update(tenant.id(), before.id, &changes).await.unwrap(), expected);
        assert_eq!(evaluations(&app).find(tenant.id(), before.id).await.unwrap(), Some(before.clone()));
    }
}

#[tokio::test]
async fn update_never_touches_another_projects_or_a_deleted_evaluation() {
    let app = TestApp::migrated().await;
    let owner = app.project_with_admin().await;
    let intruder = app.project_with_admin().await;
    let evaluation = insert(&app, new_evaluation(&owner)).await;
    let deleted = insert(&app, new_evaluation(&owner)).await;
    evaluations(&app).soft_delete(owner.id(), deleted.id).await.unwrap();
    let changes = EvaluationChanges { enabled: Some(true), ..EvaluationChanges::default() };

    assert_eq!(evaluations(&app).update(intruder.id(), evaluation.id, &changes).await.unwrap(), SaveOutcome::NotFound);
    assert_eq!(evaluations(&app).update(owner.id(), deleted.id, &changes).await.unwrap(), SaveOutcome::NotFound);
    assert_eq!(evaluations(&app).find(owner.id(), evaluation.id).await.unwrap(), Some(evaluation));
    assert_eq!(raw_row(&app, deleted.id).await, (true, "paused".to_owned(), None));
}

#[tokio::test]
async fn update_with_delete_soft_deletes_and_answers_the_deleted_row() {
    let (app, tenant) = TestApp::with_tenant().await;
    let evaluation = insert(&app, new_evaluation(&tenant)).await;
    let changes = EvaluationChanges { delete: true, ..EvaluationChanges::default() };

    let outcome = evaluations(&app).update(tenant.id(), evaluation.id, &changes).await.unwrap();

    assert!(matches!(outcome, SaveOutcome::Saved(ref saved) if saved.deleted), "{outcome:?}");
    assert_eq!(evaluations(&app).find(tenant.id(), evaluation.id).await.unwrap(), None);
}

// ---- soft_delete ----

#[tokio::test]
async fn soft_delete_keeps_the_row_and_happens_once() {
    let (app, tenant) = TestApp::with_tenant().await;
    let evaluation = insert(&app, new_evaluation(&tenant)).await;

    assert!(evaluations(&app).soft_delete(tenant.id(), evaluation.id).await.unwrap());
    assert!(!evaluations(&app).soft_delete(tenant.id(), evaluation.id).await.unwrap());
    assert_eq!(evaluation_count(&app).await, 1, "the row stays");
    assert!(raw_row(&app, evaluation.id).await.0);
}

#[tokio::test]
async fn soft_delete_never_deletes_another_projects_evaluation() {
    let app = TestApp::migrated().await;
    let owner = app.project_with_admin().await;
    let intruder = app.project_with_admin().await;
    let evaluation = insert(&app, new_evaluation(&owner)).await;

    assert!(!evaluations(&app).soft_delete(intruder.id(), evaluation.id).await.unwrap());
    assert_eq!(evaluations(&app).find(owner.id(), evaluation.id).await.unwrap(), Some(evaluation));
}

// ---- state invariants in the schema ----

#[tokio::test]
async fn the_schema_refuses_status_combinations_that_break_the_invariants() {
    let (app, tenant) = TestApp::with_tenant().await;
    let evaluation = insert(&app, new_evaluation(&tenant)).await;

    for (enabled, status, reason) in [
        (false, "active", None),
        (true, "paused", None),
        (true, "error", Some("provider_key_deleted")),
        (false, "error", None),
        (false, "paused", Some("provider_key_deleted")),
    ] {
        let refused = sqlx::query("UPDATE evaluations SET enabled = $2, status = $3, status_reason = $4 WHERE id = $1")
            .bind(evaluation.id.0)
            .bind(enabled)
            .bind(status)
            .bind(reason)
            .execute(app.pool())
            .await;
        assert!(refused.is_err(), "{enabled} {status} {reason:?} was accepted");
    }
}

#[tokio::test]
async fn the_schema_refuses_a_configuration_whose_key_is_of_another_provider() {
    let (app, tenant) = TestApp::with_tenant().await;
    let anthropic = app.insert_key(tenant.key().provider(Provider::Anthropic)).await;

    let refused = app.insert_openai_configuration_row(tenant.id(), anthropic.id).await;

    assert!(refused.is_err());
}

// ---- using_key ----

#[tokio::test]
async fn using_key_lists_the_live_evaluations_whose_configuration_uses_it() {
    let (app, tenant) = TestApp::with_tenant().await;
    let key = app.insert_key(tenant.key()).await;
    let other_key = app.insert_key(tenant.key()).await;
    let first = insert_using_key(&app, &tenant, Provider::Openai, Some(key.id), EvaluationState::Active).await;
    let second = insert_using_key(&app, &tenant, Provider::Openai, Some(key.id), EvaluationState::Paused).await;
    let deleted = insert_using_key(&app, &tenant, Provider::Openai, Some(key.id), EvaluationState::Paused).await;
    insert_using_key(&app, &tenant, Provider::Openai, Some(other_key.id), EvaluationState::Active).await;
    insert_using_key(&app, &tenant, Provider::Openai, None, EvaluationState::Active).await;
    insert(&app, new_evaluation(&tenant)).await;
    evaluations(&app).soft_delete(tenant.id(), deleted.id).await.unwrap();

    let dependents = evaluations(&app).using_key(tenant.id(), key.id).await.unwrap();

    let expected: Vec<_> =
        [second, first].into_iter().map(|e| (e.id, e.name, e.model_configuration.unwrap().id)).collect();
    let found: Vec<_> = dependents.into_iter().map(|d| (d.id, d.name, d.model_configuration)).collect();
    assert_eq!(found, expected);
}

#[tokio::test]
async fn using_key_never_lists_another_projects_evaluations() {
    let app = TestApp::migrated().await;
    let owner = app.project_with_admin().await;
    let intruder = app.project_with_admin().await;
    let key = app.insert_key(owner.key()).await;
    insert_using_key(&app, &owner, Provider::Openai, Some(key.id), EvaluationState::Active).await;

    assert!(evaluations(&app).using_key(intruder.id(), key.id).await.unwrap().is_empty());
}

// ---- on_trial_credits ----

#[tokio::test]
async fn on_trial_credits_lists_keyless_configurations_of_the_provider() {
    let (app, tenant) = TestApp::with_tenant().await;
    let other = app.project_with_admin().await;
    let key = app.insert_key(tenant.key()).await;
    let trial_paused = insert_using_key(&app, &tenant, Provider::Openai, None, EvaluationState::Paused).await;
    let trial_active = insert_using_key(&app, &tenant, Provider::Openai, None, EvaluationState::Active).await;
    let unconfigured = insert(&app, new_evaluation(&tenant)).await;
    let gemini = insert_using_key(&app, &tenant, Provider::Gemini, None, EvaluationState::Active).await;
    insert_using_key(&app, &tenant, Provider::Openai, Some(key.id), EvaluationState::Active).await;
    let deleted = insert_using_key(&app, &tenant, Provider::Openai, None, EvaluationState::Active).await;
    evaluations(&app).soft_delete(tenant.id(), deleted.id).await.unwrap();
    insert_using_key(&app, &other, Provider::Openai, None, EvaluationState::Active).await;
    let repo = evaluations(&app);

    let openai: Vec<_> = repo
        .on_trial_credits(tenant.id(), Provider::Openai, true, 50)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.id, e.enabled))
        .collect();
    let without_unconfigured: Vec<_> = repo
        .on_trial_credits(tenant.id(), Provider::Openai, false, 50)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    let gemini_only: Vec<_> = repo
        .on_trial_credits(tenant.id(), Provider::Gemini, false, 50)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    let limited = repo.on_trial_credits(tenant.id(), Provider::Openai, true, 2).await.unwrap();

    assert_eq!(openai, [(unconfigured.id, false), (trial_active.id, true), (trial_paused.id, false)]);
    assert_eq!(without_unconfigured, [trial_active.id, trial_paused.id]);
    assert_eq!(gemini_only, [gemini.id]);
    assert_eq!(limited.len(), 2);
}

// ---- assign_key ----

#[tokio::test]
async fn assign_key_repoints_same_provider_configurations_and_moves_states() {
    let (app, tenant) = TestApp::with_tenant().await;
    let old_key = app.insert_key(tenant.key().provider(Provider::Anthropic)).await;
    let key = app.insert_key(tenant.key().provider(Provider::Anthropic)).await;
    let failed = insert_using_key(&app, &tenant, Provider::Anthropic, Some(old_key.id), EvaluationState::Paused).await;
    set_state(&app, failed.id, EvaluationState::Error(StatusReason::ProviderKeyDeleted)).await;
    let trial = insert_using_key(&app, &tenant, Provider::Anthropic, None, EvaluationState::Active).await;
    let other_provider = insert_using_key(&app, &tenant, Provider::Openai, None, EvaluationState::Paused).await;
    let unconfigured = insert(&app, new_evaluation(&tenant)).await;
    let untouched = insert_using_key(&app, &tenant, Provider::Anthropic, None, EvaluationState::Paused).await;
    let assignment = KeyAssignment {
        actor: None,
        evaluations: vec![failed.id, trial.id, other_provider.id, unconfigured.id],
        enable: false,
        model_for_unconfigured: None,
    };

    let outcome = evaluations(&app).assign_key(tenant.id(), key.id, &assignment).await.unwrap();

    assert_eq!(outcome, AssignOutcome::Assigned { configs_updated: 2, evals_enabled: 0 });
    let failed = stored(&app, &tenant, failed.id).await;
    assert_eq!(failed.state, EvaluationState::Paused, "the error is cleared");
    assert_eq!(failed.model_configuration.unwrap().provider_key, Some(key.id));
    let trial = stored(&app, &tenant, trial.id).await;
    assert_eq!((trial.state, trial.model_configuration.unwrap().provider_key), (EvaluationState::Active, Some(key.id)));
    assert_eq!(stored(&app, &tenant, other_provider.id).await.model_configuration.unwrap().provider_key, None);
    assert_eq!(stored(&app, &tenant, unconfigured.id).await.model_configuration, None);
    assert_eq!(stored(&app, &tenant, untouched.id).await, untouched);
}

#[tokio::test]
async fn assign_key_configures_unconfigured_evaluations_and_enables_on_request() {
    let (app, tenant) = TestApp::with_tenant().await;
    let key = app.insert_key(tenant.key()).await;
    let unconfigured = insert(&app, new_evaluation(&tenant)).await;
    let active = insert_using_key(&app, &tenant, Provider::Openai, None, EvaluationState::Active).await;
    let failed = insert(&app, new_evaluation(&tenant)).await;
    set_state(&app, failed.id, EvaluationState::Error(StatusReason::TrialLimitReached)).await;
    let assignment = KeyAssignment {
        actor: None,
        evaluations: vec![unconfigured.id, active.id, failed.id],
        enable: true,
        model_for_unconfigured: Some(ModelName::parse("gpt-5-mini").unwrap()),
    };

    let outcome = evaluations(&app).assign_key(tenant.id(), key.id, &assignment).await.unwrap();

    assert_eq!(outcome, AssignOutcome::Assigned { configs_updated: 3, evals_enabled: 2 });
    for id in [unconfigured.id, active.id, failed.id] {
        let evaluation = stored(&app, &tenant, id).await;
        assert_eq!(evaluation.state, EvaluationState::Active);
        let configuration = evaluation.model_configuration.expect("configured");
        assert_eq!(configuration.provider_key, Some(key.id));
        assert_eq!(configuration.provider, Provider::Openai);
    }
    let created = stored(&app, &tenant, unconfigured.id).await.model_configuration.unwrap();
    assert_eq!(created.model, "gpt-5-mini");
}

#[tokio::test]
async fn assign_key_ignores_other_projects_and_deleted_evaluations() {
    let (app, tenant) = TestApp::with_tenant().await;
    let other = app.project_with_admin().await;
    let key = app.insert_key(tenant.key()).await;
    let foreign = insert_using_key(&app, &other, Provider::Openai, None, EvaluationState::Paused).await;
    let deleted = insert_using_key(&app, &tenant, Provider::Openai, None, EvaluationState::Paused).await;
    evaluations(&app).soft_delete(tenant.id(), deleted.id).await.unwrap();
    let assignment = KeyAssignment {
        actor: None,
        evaluations: vec![foreign.id, deleted.id, EvaluationId::generate()],
        enable: true,
        model_for_unconfigured: Some(ModelName::parse("gpt-5-mini").unwrap()),
    };

    let outcome = evaluations(&app).assign_key(tenant.id(), key.id, &assignment).await.unwrap();

    assert_eq!(outcome, AssignOutcome::Assigned { configs_updated: 0, evals_enabled: 0 });
    assert_eq!(stored(&app, &other, foreign.id).await, foreign);
    assert_eq!(raw_row(&app, deleted.id).await, (true, "paused".to_owned(), None));
}

#[tokio::test]
async fn assign_key_of_an_unknown_or_foreign_key_changes_nothing() {
    let (app, tenant) = TestApp::with_tenant().await;
    let other = app.project_with_admin().await;
    let foreign_key = app.insert_key(other.key()).await;
    let evaluation = insert_using_key(&app, &tenant, Provider::Openai, None, EvaluationState::Paused).await;
    let assignment =
        KeyAssignment { actor: None, evaluations: vec![evaluation.id], enable: true, model_for_unconfigured: None };

    for key in [foreign_key.id, ProviderKeyId::generate()] {
        let outcome = evaluations(&app).assign_key(tenant.id(), key, &assignment).await.unwrap();
        assert_eq!(outcome, AssignOutcome::KeyNotFound);
    }
    assert_eq!(stored(&app, &tenant, evaluation.id).await, evaluation);
}

#[tokio::test]
async fn a_key_in_any_state_can_be_assigned() {
    let (app, tenant) = TestApp::with_tenant().await;
    let key = app.insert_key(tenant.key().state(KeyState::Invalid)).await;
    let evaluation = insert_using_key(&app, &tenant, Provider::Openai, None, EvaluationState::Paused).await;
    let assignment =
        KeyAssignment { actor: None, evaluations: vec![evaluation.id], enable: false, model_for_unconfigured: None };

    let outcome = evaluations(&app).assign_key(tenant.id(), key.id, &assignment).await.unwrap();

    assert_eq!(outcome, AssignOutcome::Assigned { configs_updated: 1, evals_enabled: 0 });
}

#[tokio::test]
async fn the_hourly_cap_is_stored_changed_and_removed() {
    let (app, tenant) = TestApp::with_tenant().await;
    let cap = MaxRunsPerHour::parse(50);
    let evaluation = insert(&app, NewEvaluation { max_runs_per_hour: cap, ..new_evaluation(&tenant) }).await;
    assert_eq!(evaluation.max_runs_per_hour, cap);

    let set = |cap| EvaluationChanges { max_runs_per_hour: Some(cap), ..EvaluationChanges::default() };
    evaluations(&app).update(tenant.id(), evaluation.id, &set(MaxRunsPerHour::parse(7))).await.unwrap();
    assert_eq!(stored(&app, &tenant, evaluation.id).await.max_runs_per_hour, MaxRunsPerHour::parse(7));
    let untouched = EvaluationChanges { name: Some(EvaluationName::parse("Renamed").unwrap()), ..Default::default() };
    evaluations(&app).update(tenant.id(), evaluation.id, &untouched).await.unwrap();
    assert_eq!(stored(&app, &tenant, evaluation.id).await.max_runs_per_hour, MaxRunsPerHour::parse(7));
    evaluations(&app).update(tenant.id(), evaluation.id, &set(None)).await.unwrap();
    assert_eq!(stored(&app, &tenant, evaluation.id).await.max_runs_per_hour, None);
}

#[tokio::test]
async fn the_runner_sees_only_enabled_evaluations_of_the_project() {
    let (app, tenant) = TestApp::with_tenant().await;
    let other = app.project_with_admin().await;
    let active = insert(&app, NewEvaluation { state: EvaluationState::Active, ..new_evaluation(&tenant) }).await;
    insert(&app, new_evaluation(&tenant)).await; // paused
    let deleted = insert(&app, NewEvaluation { state: EvaluationState::Active, ..new_evaluation(&tenant) }).await;
    evaluations(&app).soft_delete(tenant.id(), deleted.id).await.unwrap();
    insert(&app, NewEvaluation { state: EvaluationState::Active, ..new_evaluation(&other) }).await;

    let enabled = evaluations(&app).list_enabled(tenant.id()).await.unwrap();
    assert_eq!(enabled.iter().map(|e| e.id).collect::<Vec<_>>(), vec![active.id]);
}

#[tokio::test]
async fn the_runner_stops_the_evaluations_it_selects_and_only_enabled_ones() {
    let (app, tenant) = TestApp::with_tenant().await;
    let key = app.insert_key(tenant.key()).await.id;
    let using_key = insert_using_key(&app, &tenant, Provider::Openai, Some(key), EvaluationState::Active).await;
    let paused_using_key = insert_using_key(&app, &tenant, Provider::Openai, Some(key), EvaluationState::Paused).await;
    let on_trial = insert_using_key(&app, &tenant, Provider::Openai, None, EvaluationState::Active).await;
    let unconfigured = insert(&app, NewEvaluation { state: EvaluationState::Active, ..new_evaluation(&tenant) }).await;
    let repository = evaluations(&app);

    let stopped = repository
        .stop_judging(tenant.id(), JudgeStop::UsingKey(key), StatusReason::ProviderKeyInvalid, None)
        .await
        .unwrap();
    assert_eq!(stopped, 1);
    assert_eq!(
        stored(&app, &tenant, using_key.id).await.state,
        EvaluationState::Error(StatusReason::ProviderKeyInvalid)
    );
    assert_eq!(stored(&app, &tenant, paused_using_key.id).await.state, EvaluationState::Paused);

    let stopped = repository
        .stop_judging(tenant.id(), JudgeStop::WithoutKey, StatusReason::TrialLimitReached, None)
        .await
        .unwrap();
    assert_eq!(stopped, 2, "the trial evaluation and the one without a configuration");
    for id in [on_trial.id, unconfigured.id] {
        assert_eq!(stored(&app, &tenant, id).await.state, EvaluationState::Error(StatusReason::TrialLimitReached));
    }

    set_state(&app, on_trial.id, EvaluationState::Active).await;
    let other = app.project_with_admin().await;
    let stopped = repository
        .stop_judging(other.id(), JudgeStop::One(on_trial.id), StatusReason::ModelNotAllowed, None)
        .await
        .unwrap();
    assert_eq!(stopped, 0, "another project's id is ignored");
    repository
        .stop_judging(tenant.id(), JudgeStop::One(on_trial.id), StatusReason::ModelNotAllowed, None)
        .await
        .unwrap();
    assert_eq!(stored(&app, &tenant, on_trial.id).await.state, EvaluationState::Error(StatusReason::ModelNotAllowed));
}
