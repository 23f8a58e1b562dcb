//! `PgProviderKeyRepository`: every method, and project isolation for each of them.

use domain::crypto::SealedSecret;
use domain::provider_key::{
    CompatibleSettings, DeleteOutcome, KeyName, KeyRemoval, KeyState, KeyWrites, Provider, ProviderKey,
    ProviderKeyChanges, ProviderKeyRepository, SealedKeyRow,
};
use domain::{PageRequest, ProviderKeyId};
use uuid::Uuid;

use domain::evaluation::{EvaluationState, StatusReason};

use crate::evaluations::{insert_using_key, stored};
use crate::support::{Tenant, TestApp};

async fn key_ids_in_project(app: &TestApp, tenant: &Tenant, page: PageRequest) -> (Vec<ProviderKeyId>, i64) {
    let page = app.keys.list(tenant.id(), page).await.unwrap();
    (page.items.iter().map(|key| key.id).collect(), page.total)
}

/// Sets a key's `created_at` to now plus `seconds`, to order keys independently of their ids.
async fn set_created_at(app: &TestApp, key: ProviderKeyId, seconds: f64) {
    sqlx::query("UPDATE provider_keys SET created_at = now() + make_interval(secs => $2) WHERE id = $1")
        .bind(key.0)
        .bind(seconds)
        .execute(app.pool())
        .await
        .unwrap();
}

/// A deletion moving the key's configurations to `replacement`, by nobody.
fn replaced_by(replacement: Option<ProviderKeyId>) -> KeyRemoval {
    KeyRemoval { replacement, actor: None }
}

/// `after` with `before`'s `updated_at`: equal to `before` when nothing else changed.
fn ignoring_updated_at(after: &ProviderKey, before: &ProviderKey) -> ProviderKey {
    ProviderKey { updated_at: before.updated_at, ..after.clone() }
}

// ---- insert ----

#[tokio::test]
async fn insert_returns_the_stored_row_with_its_creator() {
    let (app, tenant) = TestApp::with_tenant().await;
    let record = tenant
        .key()
        .azure("https://acme.openai.azure.com", "2024-10-21")
        .name("Azure prod")
        .state(KeyState::Error)
        .error_message("Rate limited")
        .build();

    let key = app.keys.insert(&record).await.unwrap();

    assert_eq!(key.id, record.id);
    assert_eq!(key.project, tenant.id());
    assert_eq!(key.provider, Provider::AzureOpenai);
    assert_eq!(key.name, "Azure prod");
    assert_eq!(key.state, KeyState::Error);
    assert_eq!(key.error_message.as_deref(), Some("Rate limited"));
    assert_eq!(key.api_key_masked, "sk-...abcd");
    assert_eq!(key.azure_endpoint.as_deref(), Some("https://acme.openai.azure.com"));
    assert_eq!(key.api_version.as_deref(), Some("2024-10-21"));
    assert_eq!(key.created_by, Some(tenant.admin_summary()));
    assert_eq!(key.created_at, key.updated_at);
    assert_eq!(key.last_used_at, None);
    assert_eq!(app.keys.find(tenant.id(), key.id).await.unwrap(), Some(key.clone()));
    assert_eq!(app.keys.find_sealed(tenant.id(), key.id).await.unwrap(), Some(record.sealed_secret));
}

#[tokio::test]
async fn an_endpoints_settings_are_stored_read_back_and_replaced_as_a_whole() {
    let (app, tenant) = TestApp::with_tenant().await;
    let settings = CompatibleSettings {
        base_url: "https://gw.example.com/v1".into(),
        extra_headers: [("x-tenant".to_owned(), "tena...t-42".to_owned())].into(),
        custom_models: vec!["llama3.1:8b".into(), "qwen2.5".into()],
    };
    let record = tenant.key().compatible(settings.clone()).build();

    let key = app.keys.insert(&record).await.unwrap();
    assert_eq!((key.provider, key.compatible.as_ref()), (Provider::OpenaiCompatible, Some(&settings)));
    assert_eq!(app.keys.find(tenant.id(), key.id).await.unwrap().unwrap().compatible, Some(settings.clone()));

    let renamed = ProviderKeyChanges { name: Some(KeyName::parse("renamed").unwrap()), ..Default::default() };
    let kept = app.keys.writes.update(tenant.id(), key.id, &renamed).await.unwrap().unwrap();
    assert_eq!(kept.compatible, Some(settings), "a change of other columns leaves the settings alone");

    let fewer =
        CompatibleSettings { custom_models: vec![], extra_headers: Default::default(), ..kept.compatible.unwrap() };
    let replaced = ProviderKeyChanges { compatible: Some(fewer.clone()), ..Default::default() };
    let after = app.keys.writes.update(tenant.id(), key.id, &replaced).await.unwrap().unwrap();
    assert_eq!(after.compatible, Some(fewer));

    let openai = app.keys.insert(&tenant.key().build()).await.unwrap();
    assert_eq!(openai.compatible, None, "other providers have no endpoint settings");
}

#[tokio::test]
async fn insert_without_set_as_active_leaves_the_active_key_alone() {
    let (app, tenant) = TestApp::with_tenant().await;
    let active = app.insert_key(tenant.key().active()).await;

    app.insert_key(tenant.key()).await;

    assert_eq!(app.active_key(tenant.id()).await, Some(active.id));
}

#[tokio::test]
async fn insert_with_set_as_active_makes_it_the_projects_active_key() {
    let (app, tenant) = TestApp::with_tenant().await;
    let other = app.project_with_admin().await;
    assert_eq!(app.active_key(tenant.id()).await, None);

    let first = app.insert_key(tenant.key().active()).await;
    assert_eq!(app.active_key(tenant.id()).await, Some(first.id));

    let second = app.insert_key(tenant.key().active()).await;
    assert_eq!(app.active_key(tenant.id()).await, Some(second.id));
    assert_eq!(app.active_key(other.id()).await, None);
}

#[tokio::test]
async fn find_shows_no_creator_once_the_creator_is_deleted() {
    let (app, tenant) = TestApp::with_tenant().await;
    let key = app.insert_key(tenant.key()).await;

    sqlx::query("DELETE FROM users WHERE id = $1").bind(tenant.admin.id.0).execute(app.pool()).await.unwrap();

    let found = app.keys.find(tenant.id(), key.id).await.unwrap().unwrap();
    assert_eq!(found.created_by, None);
    assert_eq!(found, ProviderKey { created_by: None, ..key });
}

// ---- find / find_sealed ----

#[tokio::test]
async fn find_returns_none_for_an_unknown_key() {
    let (app, tenant) = TestApp::with_tenant().await;
    app.insert_key(tenant.key()).await;

    assert_eq!(app.keys.find(tenant.id(), ProviderKeyId::generate()).await.unwrap(), None);
}

#[tokio::test]
async fn find_never_returns_another_projects_key() {
    let app = TestApp::migrated().await;
    let owner = app.project_with_admin().await;
    let intruder = app.project_with_admin().await;
    let key = app.insert_key(owner.key()).await;

    assert_eq!(app.keys.find(intruder.id(), key.id).await.unwrap(), None);
    assert!(app.keys.find(owner.id(), key.id).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_finds_each_get_their_own_projects_key() {
    let app = TestApp::migrated().await;
    let owner = app.project_with_admin().await;
    let other = app.project_with_admin().await;
    let owners = app.insert_key(owner.key()).await;
    let others = app.insert_key(other.key()).await;
    let unknown = ProviderKeyId::generate();
    let asked = [
        (owner.id(), owners.id, Some(&owners)),
        (other.id(), owners.id, None),
        (other.id(), others.id, Some(&others)),
        (owner.id(), others.id, None),
        (owner.id(), unknown, None),
    ];

    // Polled together, the first find gathers and the others join its statement.
    for _ in 0..20 {
        let answers =
            futures::future::join_all(asked.iter().map(|(project, id, _)| app.keys.find(*project, *id))).await;
        for ((project, id, expected), answer) in asked.iter().zip(answers) {
            assert_eq!(answer.unwrap().as_ref(), *expected, "key {id:?} asked in project {project:?}");
        }
    }
}

#[tokio::test]
async fn find_sealed_returns_the_stored_blob() {
    let (app, tenant) = TestApp::with_tenant().await;
    let key = app.insert_key(tenant.key().sealed(&[0, 1, 2, 255])).await;

    assert_eq!(app.keys.find_sealed(tenant.id(), key.id).await.unwrap(), Some(SealedSecret(vec![0, 1, 2, 255])));
    assert_eq!(app.keys.find_sealed(tenant.id(), ProviderKeyId::generate()).await.unwrap(), None);
}

#[tokio::test]
async fn find_sealed_never_returns_another_projects_secret() {
    let app = TestApp::migrated().await;
    let owner = app.project_with_admin().await;
    let intruder = app.project_with_admin().await;
    let key = app.insert_key(owner.key()).await;

    assert_eq!(app.keys.find_sealed(intruder.id(), key.id).await.unwrap(), None);
}

#[tokio::test]
async fn find_sealed_is_none_when_the_key_has_no_secret() {
    let (app, tenant) = TestApp::with_tenant().await;
    let key = app.insert_key(tenant.key()).await;
    sqlx::query("UPDATE provider_keys SET sealed_secret = NULL WHERE id = $1")
        .bind(key.id.0)
        .execute(app.pool())
        .await
        .unwrap();

    assert_eq!(app.keys.find_sealed(tenant.id(), key.id).await.unwrap(), None);
}

// ---- list ----

#[tokio::test]
async fn list_returns_the_newest_first_with_the_total() {
    let (app, tenant) = TestApp::with_tenant().await;
    let oldest = app.insert_key(tenant.key().name("oldest")).await;
    let middle = app.insert_key(tenant.key().name("middle")).await;
    let newest = app.insert_key(tenant.key().name("newest")).await;

    let page = app.keys.list(tenant.id(), PageRequest::default()).await.unwrap();

    assert_eq!(page.total, 3);
    assert_eq!(page.items, [newest, middle, oldest]);
}

#[tokio::test]
async fn list_orders_by_creation_time_then_id_not_by_insertion() {
    let (app, tenant) = TestApp::with_tenant().await;
    let a = app.insert_key(tenant.key()).await;
    let b = app.insert_key(tenant.key()).await;
    let c = app.insert_key(tenant.key()).await;
    set_created_at(&app, a.id, 3600.0).await;
    set_created_at(&app, b.id, -3600.0).await;
    set_created_at(&app, c.id, -3600.0).await;
    sqlx::query(
        "UPDATE provider_keys SET created_at = (SELECT created_at FROM provider_keys WHERE id = $1) WHERE id = $2",
    )
    .bind(b.id.0)
    .bind(c.id.0)
    .execute(app.pool())
    .await
    .unwrap();
    let (tied_high, tied_low) = if b.id > c.id { (b.id, c.id) } else { (c.id, b.id) };

    let (ids, _) = key_ids_in_project(&app, &tenant, PageRequest::default()).await;

    // Spec section 0 "Lists": `-created_at, id` — ties by ascending id.
    assert_eq!(ids, [a.id, tied_low, tied_high]);
}

#[tokio::test]
async fn list_pages_with_limit_and_offset_and_counts_every_key() {
    let (app, tenant) = TestApp::with_tenant().await;
    let mut newest_first = Vec::new();
    for _ in 0..5 {
        newest_first.insert(0, app.insert_key(tenant.key()).await.id);
    }

    let first = key_ids_in_project(&app, &tenant, PageRequest::new(2, 0)).await;
    let second = key_ids_in_project(&app, &tenant, PageRequest::new(2, 2)).await;
    let last = key_ids_in_project(&app, &tenant, PageRequest::new(2, 4)).await;
    let beyond = key_ids_in_project(&app, &tenant, PageRequest::new(2, 10)).await;

    assert_eq!(first, (newest_first[0..2].to_vec(), 5));
    assert_eq!(second, (newest_first[2..4].to_vec(), 5));
    assert_eq!(last, (newest_first[4..].to_vec(), 5));
    assert_eq!(beyond, (vec![], 5));
}

#[tokio::test]
async fn list_never_includes_another_projects_keys() {
    let app = TestApp::migrated().await;
    let owner = app.project_with_admin().await;
    let other = app.project_with_admin().await;
    app.insert_key(owner.key()).await;
    app.insert_key(owner.key()).await;
    let own = app.insert_key(other.key()).await;
    let empty = app.project_with_admin().await;

    assert_eq!(key_ids_in_project(&app, &other, PageRequest::default()).await, (vec![own.id], 1));
    assert_eq!(key_ids_in_project(&app, &empty, PageRequest::default()).await, (vec![], 0));
}

// ---- update ----

#[tokio::test]
async fn update_with_no_changes_leaves_every_column() {
    let (app, tenant) = TestApp::with_tenant().await;
    let before = app
        .insert_key(
            tenant.key().azure("https://acme.openai.azure.com", "2024-10-21").state(KeyState::Error).error_message("x"),
        )
        .await;
    let sealed_before = app.keys.find_sealed(tenant.id(), before.id).await.unwrap();

    let after = app.keys.writes.update(tenant.id(), before.id, &ProviderKeyChanges::default()).await.unwrap().unwrap();

    assert_eq!(ignoring_updated_at(&after, &before), before);
    assert_eq!(app.keys.find_sealed(tenant.id(), before.id).await.unwrap(), sealed_before);
}

#[tokio::test]
async fn update_changes_only_the_given_columns() {
    let (app, tenant) = TestApp::with_tenant().await;
    let before = app
        .insert_key(
            tenant
                .key()
                .azure("https://old.openai.azure.com", "2024-06-01")
                .state(KeyState::Error)
                .error_message("Rate limited"),
        )
        .await;

    let changes = ProviderKeyChanges {
        name: Some(KeyName::parse("Renamed").unwrap()),
        state: Some(KeyState::Ok),
        api_key_masked: Some("sk-...wxyz".to_owned()),
        azure_endpoint: Some("https://new.openai.azure.com".to_owned()),
        api_version: Some("2024-10-21".to_owned()),
        sealed_secret: Some(SealedSecret(vec![9, 9, 9])),
        ..ProviderKeyChanges::default()
    };
    let after = app.keys.writes.update(tenant.id(), before.id, &changes).await.unwrap().unwrap();

    let expected = ProviderKey {
        name: "Renamed".to_owned(),
        state: KeyState::Ok,
        api_key_masked: "sk-...wxyz".to_owned(),
        azure_endpoint: Some("https://new.openai.azure.com".to_owned()),
        api_version: Some("2024-10-21".to_owned()),
        ..before.clone()
    };
    assert_eq!(ignoring_updated_at(&after, &before), expected, "error_message: None must keep the message");
    assert_eq!(after.error_message.as_deref(), Some("Rate limited"));
    assert_eq!(app.keys.find(tenant.id(), before.id).await.unwrap(), Some(after));
    assert_eq!(app.keys.find_sealed(tenant.id(), before.id).await.unwrap(), Some(SealedSecret(vec![9, 9, 9])));
}

#[tokio::test]
async fn update_with_some_none_error_message_clears_it() {
    let (app, tenant) = TestApp::with_tenant().await;
    let key = app.insert_key(tenant.key().state(KeyState::Invalid).error_message("Incorrect API key")).await;

    let changes = ProviderKeyChanges { error_message: Some(None), ..ProviderKeyChanges::default() };
    let after = app.keys.writes.update(tenant.id(), key.id, &changes).await.unwrap().unwrap();

    assert_eq!(after.error_message, None);
    assert_eq!(after.state, KeyState::Invalid);
}

#[tokio::test]
async fn update_with_some_message_replaces_the_error_message() {
    let (app, tenant) = TestApp::with_tenant().await;
    let key = app.insert_key(tenant.key()).await;

    let changes = ProviderKeyChanges {
        state: Some(KeyState::Error),
        error_message: Some(Some("Provider unavailable".to_owned())),
        ..ProviderKeyChanges::default()
    };
    let after = app.keys.writes.update(tenant.id(), key.id, &changes).await.unwrap().unwrap();

    assert_eq!(after.error_message.as_deref(), Some("Provider unavailable"));
    assert_eq!(after.state, KeyState::Error);
}

#[tokio::test]
async fn update_with_set_as_active_makes_it_the_active_key() {
    let (app, tenant) = TestApp::with_tenant().await;
    let previous = app.insert_key(tenant.key().active()).await;
    let key = app.insert_key(tenant.key()).await;

    let changes = ProviderKeyChanges { set_as_active: true, ..ProviderKeyChanges::default() };
    app.keys.writes.update(tenant.id(), key.id, &changes).await.unwrap().unwrap();

    assert_eq!(app.active_key(tenant.id()).await, Some(key.id));
    assert!(app.keys.find(tenant.id(), previous.id).await.unwrap().is_some());
}

#[tokio::test]
async fn update_returns_none_for_an_unknown_key() {
    let (app, tenant) = TestApp::with_tenant().await;

    let changes = ProviderKeyChanges { set_as_active: true, ..ProviderKeyChanges::default() };
    let updated = app.keys.writes.update(tenant.id(), ProviderKeyId::generate(), &changes).await.unwrap();

    assert_eq!(updated, None);
    assert_eq!(app.active_key(tenant.id()).await, None);
}

#[tokio::test]
async fn update_never_changes_another_projects_key() {
    let app = TestApp::migrated().await;
    let owner = app.project_with_admin().await;
    let intruder = app.project_with_admin().await;
    let key = app.insert_key(owner.key()).await;
    let sealed = app.keys.find_sealed(owner.id(), key.id).await.unwrap();

    let changes = ProviderKeyChanges {
        name: Some(KeyName::parse("hijacked").unwrap()),
        state: Some(KeyState::Invalid),
        error_message: Some(Some("hijacked".to_owned())),
        api_key_masked: Some("sk-...evil".to_owned()),
        sealed_secret: Some(SealedSecret(vec![6, 6, 6])),
        set_as_active: true,
        ..ProviderKeyChanges::default()
    };
    let updated = app.keys.writes.update(intruder.id(), key.id, &changes).await.unwrap();

    assert_eq!(updated, None);
    assert_eq!(app.keys.find(owner.id(), key.id).await.unwrap(), Some(key.clone()));
    assert_eq!(app.keys.find_sealed(owner.id(), key.id).await.unwrap(), sealed);
    assert_eq!(app.active_key(intruder.id()).await, None);
    assert_eq!(app.active_key(owner.id()).await, None);
}

// ---- delete ----

#[tokio::test]
async fn delete_without_replacement_detaches_its_model_configurations() {
    let (app, tenant) = TestApp::with_tenant().await;
    let key = app.insert_key(tenant.key()).await;
    let kept = app.insert_key(tenant.key()).await;
    let uses_key = [
        app.add_model_configuration(tenant.id(), Provider::Openai, key.id).await,
        app.add_model_configuration(tenant.id(), Provider::Openai, key.id).await,
    ];
    let uses_kept = app.add_model_configuration(tenant.id(), Provider::Openai, kept.id).await;

    let outcome = app.keys.writes.delete(tenant.id(), key.id, replaced_by(None)).await.unwrap();

    assert_eq!(outcome, DeleteOutcome::Deleted { moved: 2, disabled: 0 });
    assert_eq!(app.keys.find(tenant.id(), key.id).await.unwrap(), None);
    for config in uses_key {
        assert_eq!(app.model_configuration_key(config).await, None);
    }
    assert_eq!(app.model_configuration_key(uses_kept).await, Some(kept.id));
}

#[tokio::test]
async fn delete_with_replacement_moves_its_model_configurations_to_it() {
    let (app, tenant) = TestApp::with_tenant().await;
    let other = app.project_with_admin().await;
    let key = app.insert_key(tenant.key().provider(Provider::Anthropic)).await;
    let replacement = app.insert_key(tenant.key().provider(Provider::Anthropic)).await;
    let unrelated = app.insert_key(tenant.key().provider(Provider::Anthropic)).await;
    let others_key = app.insert_key(other.key().provider(Provider::Anthropic)).await;
    let moving = [
        app.add_model_configuration(tenant.id(), Provider::Anthropic, key.id).await,
        app.add_model_configuration(tenant.id(), Provider::Anthropic, key.id).await,
        app.add_model_configuration(tenant.id(), Provider::Anthropic, key.id).await,
    ];
    let staying = app.add_model_configuration(tenant.id(), Provider::Anthropic, unrelated.id).await;
    let others = app.add_model_configuration(other.id(), Provider::Anthropic, others_key.id).await;

    let outcome = app.keys.writes.delete(tenant.id(), key.id, replaced_by(Some(replacement.id))).await.unwrap();

    assert_eq!(outcome, DeleteOutcome::Deleted { moved: 3, disabled: 0 });
    assert_eq!(app.keys.find(tenant.id(), key.id).await.unwrap(), None);
    for config in moving {
        assert_eq!(app.model_configuration_key(config).await, Some(replacement.id));
    }
    assert_eq!(app.model_configuration_key(staying).await, Some(unrelated.id));
    assert_eq!(app.model_configuration_key(others).await, Some(others_key.id));
    assert!(app.keys.find(tenant.id(), replacement.id).await.unwrap().is_some());
}

#[tokio::test]
async fn delete_without_replacement_puts_the_active_evaluations_that_used_it_in_error() {
    let (app, tenant) = TestApp::with_tenant().await;
    let other = app.project_with_admin().await;
    let key = app.insert_key(tenant.key()).await;
    let kept = app.insert_key(tenant.key()).await;
    let others_key = app.insert_key(other.key()).await;
    let active = insert_using_key(&app, &tenant, Provider::Openai, Some(key.id), EvaluationState::Active).await;
    let paused = insert_using_key(&app, &tenant, Provider::Openai, Some(key.id), EvaluationState::Paused).await;
    let on_kept = insert_using_key(&app, &tenant, Provider::Openai, Some(kept.id), EvaluationState::Active).await;
    let trial = insert_using_key(&app, &tenant, Provider::Openai, None, EvaluationState::Active).await;
    let others = insert_using_key(&app, &other, Provider::Openai, Some(others_key.id), EvaluationState::Active).await;

    let outcome = app.keys.writes.delete(tenant.id(), key.id, replaced_by(None)).await.unwrap();

    assert_eq!(outcome, DeleteOutcome::Deleted { moved: 2, disabled: 1 });
    let failed = stored(&app, &tenant, active.id).await;
    assert_eq!(failed.state, EvaluationState::Error(StatusReason::ProviderKeyDeleted));
    assert!(!failed.state.enabled());
    assert_eq!(failed.model_configuration.unwrap().provider_key, None, "the configuration loses the key");
    let paused_after = stored(&app, &tenant, paused.id).await;
    assert_eq!(paused_after.state, EvaluationState::Paused, "only active evaluations fail");
    assert_eq!(paused_after.model_configuration.unwrap().provider_key, None);
    assert_eq!(stored(&app, &tenant, on_kept.id).await, on_kept);
    assert_eq!(stored(&app, &tenant, trial.id).await, trial);
    assert_eq!(stored(&app, &other, others.id).await, others);
}

#[tokio::test]
async fn delete_with_replacement_keeps_the_evaluations_running_on_the_replacement() {
    let (app, tenant) = TestApp::with_tenant().await;
    let key = app.insert_key(tenant.key()).await;
    let replacement = app.insert_key(tenant.key()).await;
    let active = insert_using_key(&app, &tenant, Provider::Openai, Some(key.id), EvaluationState::Active).await;

    let outcome = app.keys.writes.delete(tenant.id(), key.id, replaced_by(Some(replacement.id))).await.unwrap();

    assert_eq!(outcome, DeleteOutcome::Deleted { moved: 1, disabled: 0 });
    let after = stored(&app, &tenant, active.id).await;
    assert_eq!(after.state, EvaluationState::Active);
    assert_eq!(after.model_configuration.unwrap().provider_key, Some(replacement.id));
}

#[tokio::test]
async fn a_refused_delete_leaves_the_evaluations_alone() {
    let (app, tenant) = TestApp::with_tenant().await;
    let key = app.insert_key(tenant.key()).await;
    let gemini = app.insert_key(tenant.key().provider(Provider::Gemini)).await;
    let active = insert_using_key(&app, &tenant, Provider::Openai, Some(key.id), EvaluationState::Active).await;

    let outcome = app.keys.writes.delete(tenant.id(), key.id, replaced_by(Some(gemini.id))).await.unwrap();

    assert_eq!(outcome, DeleteOutcome::ReplacementProviderMismatch);
    assert_eq!(stored(&app, &tenant, active.id).await, active);
}

// ---- list_usable ----

#[tokio::test]
async fn list_usable_returns_the_projects_ok_keys_of_the_provider_newest_first() {
    let (app, tenant) = TestApp::with_tenant().await;
    let other = app.project_with_admin().await;
    let older = app.insert_key(tenant.key().provider(Provider::Anthropic)).await;
    let newer = app.insert_key(tenant.key().provider(Provider::Anthropic)).await;
    app.insert_key(tenant.key().provider(Provider::Anthropic).state(KeyState::Invalid)).await;
    app.insert_key(tenant.key().provider(Provider::Anthropic).state(KeyState::Unknown)).await;
    app.insert_key(tenant.key().provider(Provider::Openai)).await;
    app.insert_key(other.key().provider(Provider::Anthropic)).await;

    let usable = app.keys.list_usable(tenant.id(), Provider::Anthropic).await.unwrap();

    assert_eq!(usable, [newer, older]);
}

#[tokio::test]
async fn delete_of_an_unused_key_moves_nothing() {
    let (app, tenant) = TestApp::with_tenant().await;
    let key = app.insert_key(tenant.key()).await;
    let replacement = app.insert_key(tenant.key()).await;

    let outcome = app.keys.writes.delete(tenant.id(), key.id, replaced_by(Some(replacement.id))).await.unwrap();

    assert_eq!(outcome, DeleteOutcome::Deleted { moved: 0, disabled: 0 });
    assert_eq!(app.keys.find(tenant.id(), key.id).await.unwrap(), None);
}

/// Asserts that a refused delete changed nothing: the key, its configurations and the
/// project's active key are as before.
async fn assert_untouched(app: &TestApp, tenant: &Tenant, key: &ProviderKey, configs: &[Uuid]) {
    assert_eq!(app.keys.find(tenant.id(), key.id).await.unwrap().as_ref(), Some(key), "the key must still exist");
    for &config in configs {
        assert_eq!(app.model_configuration_key(config).await, Some(key.id), "configurations must not move");
    }
    assert_eq!(app.active_key(tenant.id()).await, Some(key.id), "the active key must stay");
}

#[tokio::test]
async fn delete_refuses_a_replacement_from_another_project_and_changes_nothing() {
    let (app, tenant) = TestApp::with_tenant().await;
    let other = app.project_with_admin().await;
    let key = app.insert_key(tenant.key().active()).await;
    let foreign = app.insert_key(other.key()).await;
    let config = app.add_model_configuration(tenant.id(), Provider::Openai, key.id).await;

    let outcome = app.keys.writes.delete(tenant.id(), key.id, replaced_by(Some(foreign.id))).await.unwrap();

    assert_eq!(outcome, DeleteOutcome::ReplacementNotFound);
    assert_untouched(&app, &tenant, &key, &[config]).await;
}

#[tokio::test]
async fn delete_refuses_an_unknown_replacement_and_changes_nothing() {
    let (app, tenant) = TestApp::with_tenant().await;
    let key = app.insert_key(tenant.key().active()).await;
    let config = app.add_model_configuration(tenant.id(), Provider::Openai, key.id).await;

    let outcome =
        app.keys.writes.delete(tenant.id(), key.id, replaced_by(Some(ProviderKeyId::generate()))).await.unwrap();

    assert_eq!(outcome, DeleteOutcome::ReplacementNotFound);
    assert_untouched(&app, &tenant, &key, &[config]).await;
}

#[tokio::test]
async fn delete_refuses_the_key_itself_as_replacement_and_changes_nothing() {
    let (app, tenant) = TestApp::with_tenant().await;
    let key = app.insert_key(tenant.key().active()).await;
    let config = app.add_model_configuration(tenant.id(), Provider::Openai, key.id).await;

    let outcome = app.keys.writes.delete(tenant.id(), key.id, replaced_by(Some(key.id))).await.unwrap();

    assert_eq!(outcome, DeleteOutcome::ReplacementNotFound);
    assert_untouched(&app, &tenant, &key, &[config]).await;
}

#[tokio::test]
async fn delete_refuses_a_replacement_of_another_provider_and_changes_nothing() {
    let (app, tenant) = TestApp::with_tenant().await;
    let key = app.insert_key(tenant.key().provider(Provider::Openai).active()).await;
    let gemini = app.insert_key(tenant.key().provider(Provider::Gemini)).await;
    let config = app.add_model_configuration(tenant.id(), Provider::Openai, key.id).await;

    let outcome = app.keys.writes.delete(tenant.id(), key.id, replaced_by(Some(gemini.id))).await.unwrap();

    assert_eq!(outcome, DeleteOutcome::ReplacementProviderMismatch);
    assert_untouched(&app, &tenant, &key, &[config]).await;
}

#[tokio::test]
async fn delete_never_deletes_another_projects_key() {
    let app = TestApp::migrated().await;
    let owner = app.project_with_admin().await;
    let intruder = app.project_with_admin().await;
    let key = app.insert_key(owner.key().active()).await;
    let config = app.add_model_configuration(owner.id(), Provider::Openai, key.id).await;

    let without = app.keys.writes.delete(intruder.id(), key.id, replaced_by(None)).await.unwrap();
    let intruders_key = app.insert_key(intruder.key()).await;
    let with = app.keys.writes.delete(intruder.id(), key.id, replaced_by(Some(intruders_key.id))).await.unwrap();

    assert_eq!(without, DeleteOutcome::NotFound);
    assert_eq!(with, DeleteOutcome::NotFound);
    assert_untouched(&app, &owner, &key, &[config]).await;
}

#[tokio::test]
async fn delete_returns_not_found_for_an_unknown_key() {
    let (app, tenant) = TestApp::with_tenant().await;

    assert_eq!(
        app.keys.writes.delete(tenant.id(), ProviderKeyId::generate(), replaced_by(None)).await.unwrap(),
        DeleteOutcome::NotFound
    );
}

#[tokio::test]
async fn delete_of_the_active_key_clears_the_active_key() {
    let (app, tenant) = TestApp::with_tenant().await;
    let other = app.project_with_admin().await;
    let key = app.insert_key(tenant.key().active()).await;
    let replacement = app.insert_key(tenant.key()).await;
    let others_active = app.insert_key(other.key().active()).await;

    app.keys.writes.delete(tenant.id(), key.id, replaced_by(Some(replacement.id))).await.unwrap();

    assert_eq!(app.active_key(tenant.id()).await, None);
    assert_eq!(app.active_key(other.id()).await, Some(others_active.id));
}

#[tokio::test]
async fn delete_of_another_key_keeps_the_active_key() {
    let (app, tenant) = TestApp::with_tenant().await;
    let active = app.insert_key(tenant.key().active()).await;
    let spare = app.insert_key(tenant.key()).await;

    assert_eq!(
        app.keys.writes.delete(tenant.id(), spare.id, replaced_by(None)).await.unwrap(),
        DeleteOutcome::Deleted { moved: 0, disabled: 0 }
    );

    assert_eq!(app.active_key(tenant.id()).await, Some(active.id));
}

#[tokio::test]
async fn model_configurations_cannot_point_at_another_projects_key() {
    let app = TestApp::migrated().await;
    let owner = app.project_with_admin().await;
    let intruder = app.project_with_admin().await;
    let key = app.insert_key(owner.key()).await;

    let refused = app.insert_openai_configuration_row(intruder.id(), key.id).await;

    assert!(refused.is_err(), "the composite foreign key must refuse a cross-project key");
}

// ---- touch_last_used ----

#[tokio::test]
async fn touch_last_used_records_the_time_of_use() {
    let (app, tenant) = TestApp::with_tenant().await;
    let key = app.insert_key(tenant.key()).await;

    app.keys.touch_last_used(tenant.id(), key.id).await.unwrap();

    let touched = app.keys.find(tenant.id(), key.id).await.unwrap().unwrap();
    let used = touched.last_used_at.expect("last_used_at is set");
    assert!(used >= key.created_at, "used at {used}, created at {}", key.created_at);
    assert_eq!(ProviderKey { last_used_at: None, ..touched }, key, "only last_used_at changes");
}

#[tokio::test]
async fn touch_last_used_never_marks_another_projects_key() {
    let app = TestApp::migrated().await;
    let owner = app.project_with_admin().await;
    let intruder = app.project_with_admin().await;
    let key = app.insert_key(owner.key()).await;

    app.keys.touch_last_used(intruder.id(), key.id).await.unwrap();

    assert_eq!(app.keys.find(owner.id(), key.id).await.unwrap().unwrap().last_used_at, None);
}

// ---- sealed_batch / replace_sealed ----

#[tokio::test]
async fn sealed_batch_pages_through_every_project_in_id_order() {
    let app = TestApp::migrated().await;
    let first = app.project_with_admin().await;
    let second = app.project_with_admin().await;
    let mut expected = Vec::new();
    for (tenant, provider) in [
        (&first, Provider::Openai),
        (&second, Provider::Anthropic),
        (&first, Provider::Gemini),
        (&second, Provider::Openai),
        (&first, Provider::TogetherAi),
    ] {
        let record = tenant.key().provider(provider).build();
        app.keys.insert(&record).await.unwrap();
        expected.push(SealedKeyRow {
            id: record.id,
            project: record.project,
            provider,
            sealed_secret: record.sealed_secret,
        });
    }
    expected.sort_by_key(|row| row.id);

    let mut seen = Vec::new();
    let mut after = None;
    let mut batches = 0;
    loop {
        let batch = app.keys.sealed_batch(after, 2).await.unwrap();
        assert!(batch.len() <= 2, "a batch holds at most `limit` rows");
        let Some(last) = batch.last() else { break };
        after = Some(last.id);
        seen.extend(batch);
        batches += 1;
    }

    assert_eq!(seen, expected);
    assert_eq!(batches, 3);
}

#[tokio::test]
async fn sealed_batch_skips_keys_without_a_secret() {
    let (app, tenant) = TestApp::with_tenant().await;
    let with_secret = app.insert_key(tenant.key()).await;
    let without = app.insert_key(tenant.key()).await;
    sqlx::query("UPDATE provider_keys SET sealed_secret = NULL WHERE id = $1")
        .bind(without.id.0)
        .execute(app.pool())
        .await
        .unwrap();

    let ids: Vec<_> = app.keys.sealed_batch(None, 10).await.unwrap().into_iter().map(|row| row.id).collect();

    assert_eq!(ids, [with_secret.id]);
}

/// The key's row as `sealed_batch` reads it.
async fn sealed_row(app: &TestApp, id: ProviderKeyId) -> SealedKeyRow {
    let rows = app.keys.sealed_batch(None, 100).await.unwrap();
    rows.into_iter().find(|row| row.id == id).expect("the key is in the batch")
}

#[tokio::test]
async fn replace_sealed_swaps_the_secret_while_it_is_unchanged() {
    let (app, tenant) = TestApp::with_tenant().await;
    let key = app.insert_key(tenant.key().sealed(b"old-envelope")).await;
    let row = sealed_row(&app, key.id).await;

    let replaced = app.keys.replace_sealed(&row, &SealedSecret(b"new-envelope".to_vec())).await.unwrap();

    assert!(replaced);
    assert_eq!(app.keys.find_sealed(tenant.id(), key.id).await.unwrap(), Some(SealedSecret(b"new-envelope".to_vec())));
}

#[tokio::test]
async fn replace_sealed_is_a_compare_and_swap() {
    let (app, tenant) = TestApp::with_tenant().await;
    let key = app.insert_key(tenant.key().sealed(b"read-by-rotation")).await;
    let row = sealed_row(&app, key.id).await;
    let rotated_meanwhile =
        ProviderKeyChanges { sealed_secret: Some(SealedSecret(b"written-by-user".to_vec())), ..Default::default() };
    app.keys.writes.update(tenant.id(), key.id, &rotated_meanwhile).await.unwrap().unwrap();

    let replaced = app.keys.replace_sealed(&row, &SealedSecret(b"stale-reseal".to_vec())).await.unwrap();

    assert!(!replaced, "the stored blob changed since it was read");
    assert_eq!(
        app.keys.find_sealed(tenant.id(), key.id).await.unwrap(),
        Some(SealedSecret(b"written-by-user".to_vec()))
    );
}

#[tokio::test]
async fn replace_sealed_never_touches_another_projects_key() {
    let app = TestApp::migrated().await;
    let owner = app.project_with_admin().await;
    let intruder = app.project_with_admin().await;
    let key = app.insert_key(owner.key().sealed(b"owners-envelope")).await;
    let row = SealedKeyRow { project: intruder.id(), ..sealed_row(&app, key.id).await };

    let replaced = app.keys.replace_sealed(&row, &SealedSecret(b"intruders-envelope".to_vec())).await.unwrap();

    assert!(!replaced);
    assert_eq!(
        app.keys.find_sealed(owner.id(), key.id).await.unwrap(),
        Some(SealedSecret(b"owners-envelope".to_vec()))
    );
}
