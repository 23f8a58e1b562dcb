//! Spec section 4: `evaluation_config/` — the active provider key and trial credits.

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::evaluations::{create_key, id_of, key_of_another_project, other_project};
use crate::helpers::*;
use crate::provider_key_actions::set_key_state;

fn config_path(app: &TestApp) -> String {
    app.llma("evaluation_config/")
}

fn set_active_path(app: &TestApp) -> String {
    app.llma("evaluation_config/set_active_key/")
}

#[tokio::test]
async fn a_project_without_settings_gets_the_defaults() {
    let app = TestApp::spawn().await;

    let config = app.get(&config_path(&app)).await.expect(200).json();

    assert_eq!(
        config,
        json!({
            "active_provider_key": null,
            "trial_eval_limit": 100,
            "trial_evals_used": 0,
            "trial_evals_remaining": 100,
            "trial_limit_reached": false,
        })
    );
    app.get(config_path(&app).trim_end_matches('/')).await.expect(200);
}

#[tokio::test]
async fn set_active_key_makes_the_key_active_and_returns_the_settings() {
    let app = TestApp::spawn().await;
    let first = create_key(&app, "openai", "first").await;
    let second = create_key(&app, "anthropic", "second").await;

    let config = app.post(&set_active_path(&app), json!({"key_id": first})).await.expect(200).json();
    assert_eq!(config["active_provider_key"]["id"], first.as_str());
    assert_eq!(config["active_provider_key"]["name"], "first");
    assert!(config["active_provider_key"]["api_key_masked"].as_str().unwrap().contains("..."));
    assert!(config["active_provider_key"].get("api_key").is_none(), "the secret is never returned");
    assert_eq!(config["trial_evals_remaining"], 100);

    app.post(set_active_path(&app).trim_end_matches('/'), json!({"key_id": second})).await.expect(200);
    let stored = app.get(&config_path(&app)).await.expect(200).json();
    assert_eq!(stored["active_provider_key"]["id"], second.as_str());
    assert_eq!(stored["active_provider_key"]["provider"], "anthropic");
}

#[tokio::test]
async fn set_active_key_needs_a_key_of_the_project() {
    let app = TestApp::spawn().await;
    let mine = create_key(&app, "openai", "mine").await;
    app.post(&set_active_path(&app), json!({"key_id": mine})).await.expect(200);
    let foreign = key_of_another_project(&app).await;

    for body in [json!({}), json!({"key_id": null}), json!({"key_id": "  "})] {
        let error = app.post(&set_active_path(&app), body.clone()).await.expect(400).json();
        assert_eq!(
            (error["attr"].clone(), error["code"].clone(), error["detail"].clone()),
            (json!("key_id"), json!("required"), json!("key_id is required")),
            "{body}"
        );
    }
    for key_id in [id_of(&foreign), Uuid::new_v4().to_string(), "not-a-uuid".to_owned()] {
        let error = app.post(&set_active_path(&app), json!({"key_id": key_id})).await.expect(404).json();
        assert_eq!((error["attr"].clone(), error["detail"].clone()), (json!("key_id"), json!("Key not found")));
    }
    let config = app.get(&config_path(&app)).await.expect(200).json();
    assert_eq!(config["active_provider_key"]["id"], mine.as_str(), "refusals change nothing");
}

#[tokio::test]
async fn only_a_key_in_state_ok_can_be_the_active_key() {
    let app = TestApp::spawn().await;
    let usable = create_key(&app, "openai", "usable").await;
    app.post(&set_active_path(&app), json!({"key_id": usable})).await.expect(200);
    let revoked = create_key(&app, "openai", "revoked").await;
    app.providers.reset().await;
    fake::answer_status(&app.providers, "openai", 401).await;
    let validated =
        app.post(&app.llma(&format!("provider_keys/{revoked}/validate/")), json!({})).await.expect(200).json();
    assert_eq!(validated["state"], "invalid");

    let error = app.post(&set_active_path(&app), json!({"key_id": revoked})).await.expect(400).json();
    assert_eq!(error["detail"], "Cannot activate key with state 'invalid'. Please validate the key first.");
    assert_eq!(error["attr"], "key_id");
    for state in ["unknown", "error"] {
        set_key_state(&app, &revoked, state).await;
        let error = app.post(&set_active_path(&app), json!({"key_id": revoked})).await.expect(400).json();
        assert_eq!(
            error["detail"],
            format!("Cannot activate key with state '{state}'. Please validate the key first.").as_str()
        );
    }

    let config = app.get(&config_path(&app)).await.expect(200).json();
    assert_eq!(config["active_provider_key"]["id"], usable.as_str(), "a refused key changes nothing");
    set_key_state(&app, &revoked, "ok").await;
    let config = app.post(&set_active_path(&app), json!({"key_id": revoked})).await.expect(200).json();
    assert_eq!(config["active_provider_key"]["id"], revoked.as_str());
}

#[tokio::test]
async fn a_key_stored_with_set_as_active_is_the_active_key_until_deleted() {
    let app = TestApp::spawn().await;
    fake::accept_models(&app.providers, "openai").await;
    let key = app
        .post(
            &app.llma("provider_keys/"),
            json!({"provider": "openai", "name": "active", "api_key": "sk-test-active-12345", "set_as_active": true}),
        )
        .await
        .expect(201)
        .json();

    assert_eq!(app.get(&config_path(&app)).await.expect(200).json()["active_provider_key"]["id"], key["id"]);
    app.delete(&app.llma(&format!("provider_keys/{}/", id_of(&key)))).await.expect(204);
    assert_eq!(app.get(&config_path(&app)).await.expect(200).json()["active_provider_key"], Value::Null);
}

#[tokio::test]
async fn the_trial_counters_follow_the_stored_usage() {
    let app = TestApp::spawn().await;
    sqlx::query("INSERT INTO evaluation_configs (project_id, trial_eval_limit, trial_evals_used) VALUES ($1, 20, 20)")
        .bind(app.project)
        .execute(&app.db.pool)
        .await
        .unwrap();

    let config = app.get(&config_path(&app)).await.expect(200).json();

    assert_eq!(config["trial_eval_limit"], 20);
    assert_eq!(config["trial_evals_used"], 20);
    assert_eq!(config["trial_evals_remaining"], 0);
    assert_eq!(config["trial_limit_reached"], true);
}

#[tokio::test]
async fn reading_needs_evaluation_read_and_choosing_the_key_evaluation_write() {
    let app = TestApp::spawn().await;
    let key = create_key(&app, "openai", "k").await;
    let reader = app.user_with_key("reader@example.com", Some((app.project, "admin")), "evaluation:read", None);
    let keys_only = app.user_with_key("keys@example.com", Some((app.project, "admin")), "llm_provider_key:write", None);
    let member = app.user_with_key("member@example.com", Some((app.project, "member")), "evaluation:write", None);

    app.request(Method::GET, &config_path(&app), Some(&reader), None).await.expect(200);
    let denied = app
        .request(Method::POST, &set_active_path(&app), Some(&reader), Some(json!({"key_id": key})))
        .await
        .expect(403)
        .json();
    assert!(denied["detail"].as_str().unwrap().contains("evaluation:write"), "{denied}");
    app.request(Method::GET, &config_path(&app), Some(&keys_only), None).await.expect(403);
    app.request(Method::GET, &config_path(&app), None, None).await.expect(401);
    app.request(Method::POST, &set_active_path(&app), Some(&member), Some(json!({"key_id": key}))).await.expect(200);
}

#[tokio::test]
async fn another_projects_settings_are_out_of_reach() {
    let app = TestApp::spawn().await;
    let (other, other_admin) = other_project(&app);
    let key = create_key(&app, "openai", "mine").await;

    let path = format!("/api/environments/{other}/llm_analytics/evaluation_config/set_active_key/");
    app.request(Method::POST, &path, Some(&other_admin), Some(json!({"key_id": key}))).await.expect(404);
    app.request(Method::GET, &config_path(&app), Some(&other_admin), None).await.expect(404);
    let theirs = app
        .request(
            Method::GET,
            &format!("/api/environments/{other}/llm_analytics/evaluation_config/"),
            Some(&other_admin),
            None,
        )
        .await
        .expect(200)
        .json();
    assert_eq!(theirs["active_provider_key"], Value::Null);
}
