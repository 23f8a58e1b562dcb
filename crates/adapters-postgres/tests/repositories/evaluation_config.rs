//! `PgEvaluationConfigRepository`: stored settings, or the defaults when none are stored.

use domain::evaluation_config::{DEFAULT_TRIAL_EVAL_LIMIT, EvaluationConfig, EvaluationConfigRepository};

use crate::support::TestApp;

#[tokio::test]
async fn get_returns_the_defaults_when_the_project_stored_none() {
    let (app, tenant) = TestApp::with_tenant().await;

    let config = app.configs.get(tenant.id()).await.unwrap();

    assert_eq!(config, EvaluationConfig::default_for(tenant.id()));
    assert_eq!(config.trial_eval_limit, DEFAULT_TRIAL_EVAL_LIMIT);
    assert_eq!(config.trial_eval_limit, 100);
    assert_eq!(config.trial_evals_used, 0);
    assert_eq!(config.active_provider_key, None);
}

#[tokio::test]
async fn get_reads_the_stored_row() {
    let (app, tenant) = TestApp::with_tenant().await;
    let key = app.insert_key(tenant.key()).await;
    sqlx::query(
        "INSERT INTO evaluation_configs (project_id, active_provider_key_id, trial_eval_limit, trial_evals_used) \
         VALUES ($1, $2, 25, 7)",
    )
    .bind(tenant.id().0)
    .bind(key.id.0)
    .execute(app.pool())
    .await
    .unwrap();

    let config = app.configs.get(tenant.id()).await.unwrap();

    assert_eq!(
        config,
        EvaluationConfig {
            project: tenant.id(),
            active_provider_key: Some(key.id),
            trial_eval_limit: 25,
            trial_evals_used: 7,
        }
    );
}

#[tokio::test]
async fn a_row_written_by_set_as_active_keeps_the_default_credits() {
    let (app, tenant) = TestApp::with_tenant().await;
    let key = app.insert_key(tenant.key().active()).await;

    let config = app.configs.get(tenant.id()).await.unwrap();

    assert_eq!(
        config,
        EvaluationConfig { active_provider_key: Some(key.id), ..EvaluationConfig::default_for(tenant.id()) }
    );
}

#[tokio::test]
async fn get_never_returns_another_projects_settings() {
    let app = TestApp::migrated().await;
    let owner = app.project_with_admin().await;
    let other = app.project_with_admin().await;
    app.insert_key(owner.key().active()).await;

    let config = app.configs.get(other.id()).await.unwrap();

    assert_eq!(config, EvaluationConfig::default_for(other.id()));
}

#[tokio::test]
async fn set_active_key_stores_the_key_and_keeps_the_credits() {
    let (app, tenant) = TestApp::with_tenant().await;
    let first = app.insert_key(tenant.key()).await;
    let second = app.insert_key(tenant.key()).await;

    assert!(app.configs.set_active_key(tenant.id(), first.id).await.unwrap());
    assert_eq!(app.active_key(tenant.id()).await, Some(first.id));
    sqlx::query("UPDATE evaluation_configs SET trial_evals_used = 9 WHERE project_id = $1")
        .bind(tenant.id().0)
        .execute(app.pool())
        .await
        .unwrap();
    assert!(app.configs.set_active_key(tenant.id(), second.id).await.unwrap());

    let config = app.configs.get(tenant.id()).await.unwrap();
    assert_eq!(config.active_provider_key, Some(second.id));
    assert_eq!(config.trial_evals_used, 9);
}

#[tokio::test]
async fn set_active_key_refuses_another_projects_or_an_unknown_key() {
    let (app, tenant) = TestApp::with_tenant().await;
    let other = app.project_with_admin().await;
    let mine = app.insert_key(tenant.key().active()).await;
    let foreign = app.insert_key(other.key()).await;

    assert!(!app.configs.set_active_key(tenant.id(), foreign.id).await.unwrap());
    assert!(!app.configs.set_active_key(tenant.id(), domain::ProviderKeyId::generate()).await.unwrap());
    assert!(!app.configs.set_active_key(other.id(), mine.id).await.unwrap());

    assert_eq!(app.active_key(tenant.id()).await, Some(mine.id));
    assert_eq!(app.active_key(other.id()).await, None);
}
