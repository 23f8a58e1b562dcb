//! Spec section 1, the provider-key actions that act on evaluations: `dependent_configs`,
//! `trial_evaluations`, `assign`, and what deleting a key does to the evaluations using it.

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::evaluations::{
    configuration, create_evaluation, create_evaluation_with, create_key, evaluation_body, fetch, id_of, other_project,
};
use crate::helpers::*;

fn key_path(app: &TestApp, key: &str, action: &str) -> String {
    app.llma(&format!("provider_keys/{key}/{action}"))
}

fn trial_path(app: &TestApp, provider: &str) -> String {
    app.llma(&format!("provider_keys/trial_evaluations/?provider={provider}"))
}

/// The ids of a list answer's `evaluations`.
fn listed(answer: &Value) -> Vec<String> {
    answer["evaluations"].as_array().unwrap().iter().map(id_of).collect()
}

pub(crate) async fn set_key_state(app: &TestApp, key: &str, state: &str) {
    sqlx::query("UPDATE provider_keys SET state = $2 WHERE id = $1")
        .bind(Uuid::parse_str(key).unwrap())
        .bind(state)
        .execute(&app.db.pool)
        .await
        .unwrap();
}

// ---- dependent_configs ----

#[tokio::test]
async fn dependent_configs_lists_the_evaluations_using_the_key_and_its_alternatives() {
    let app = TestApp::spawn().await;
    let key = create_key(&app, "openai", "main").await;
    let spare = create_key(&app, "openai", "spare").await;
    let broken = create_key(&app, "openai", "broken").await;
    set_key_state(&app, &broken, "invalid").await;
    create_key(&app, "anthropic", "claude").await;
    let first = create_evaluation_with(&app, "first", true, configuration("openai", Some(&key))).await;
    let second = create_evaluation_with(&app, "second", false, configuration("openai", Some(&key))).await;
    let deleted = create_evaluation_with(&app, "deleted", true, configuration("openai", Some(&key))).await;
    crate::evaluations::soft_delete(&app, &id_of(&deleted)).await;
    create_evaluation_with(&app, "on spare", true, configuration("openai", Some(&spare))).await;
    create_evaluation_with(&app, "trial", true, configuration("openai", None)).await;

    let answer = app.get(&key_path(&app, &key, "dependent_configs/")).await.expect(200).json();

    let expected: Vec<Value> = [&second, &first]
        .into_iter()
        .map(|e| json!({"id": e["id"], "name": e["name"], "model_configuration_id": answer_config_id(&answer, e)}))
        .collect();
    assert_eq!(answer["evaluations"], json!(expected));
    assert_eq!(answer["alternative_keys"], json!([{"id": spare, "name": "spare", "provider": "openai"}]));
    app.get(key_path(&app, &key, "dependent_configs").as_str()).await.expect(200);
}

/// The configuration id the answer names for `evaluation` (checked against the database).
fn answer_config_id(answer: &Value, evaluation: &Value) -> Value {
    let entry = answer["evaluations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == evaluation["id"])
        .unwrap_or_else(|| panic!("{} missing from {answer}", evaluation["id"]));
    assert!(Uuid::parse_str(entry["model_configuration_id"].as_str().unwrap()).is_ok());
    entry["model_configuration_id"].clone()
}

#[tokio::test]
async fn dependent_configs_names_the_configuration_the_evaluation_uses() {
    let app = TestApp::spawn().await;
    let key = create_key(&app, "openai", "main").await;
    let evaluation = create_evaluation_with(&app, "judge", true, configuration("openai", Some(&key))).await;

    let answer = app.get(&key_path(&app, &key, "dependent_configs/")).await.expect(200).json();

    let stored: Uuid = sqlx::query_scalar("SELECT model_configuration_id FROM evaluations WHERE id = $1")
        .bind(Uuid::parse_str(&id_of(&evaluation)).unwrap())
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(answer["evaluations"][0]["model_configuration_id"], stored.to_string());
    assert_eq!(answer["alternative_keys"], json!([]));
}

#[tokio::test]
async fn dependent_configs_of_unknown_or_foreign_keys_is_404_and_needs_the_read_scope() {
    let app = TestApp::spawn().await;
    let key = create_key(&app, "openai", "main").await;
    let (other, other_admin) = other_project(&app);

    app.get(&key_path(&app, &Uuid::new_v4().to_string(), "dependent_configs/")).await.expect(404);
    app.get(&key_path(&app, "garbage", "dependent_configs/")).await.expect(404);
    let foreign = format!("/api/environments/{other}/llm_analytics/provider_keys/{key}/dependent_configs/");
    app.request(Method::GET, &foreign, Some(&other_admin), None).await.expect(404);
    let reader = app.user_with_key("reader@example.com", Some((app.project, "member")), "llm_provider_key:read", None);
    app.request(Method::GET, &key_path(&app, &key, "dependent_configs/"), Some(&reader), None).await.expect(200);
    let evaluator = app.user_with_key("eval@example.com", Some((app.project, "admin")), "evaluation:write", None);
    let denied = app
        .request(Method::GET, &key_path(&app, &key, "dependent_configs/"), Some(&evaluator), None)
        .await
        .expect(403)
        .json();
    assert!(denied["detail"].as_str().unwrap().contains("llm_provider_key:read"), "{denied}");
}

// ---- trial_evaluations ----

#[tokio::test]
async fn trial_evaluations_needs_a_supported_provider() {
    let app = TestApp::spawn().await;

    let missing = app.get(&app.llma("provider_keys/trial_evaluations/")).await.expect(400).json();
    assert_eq!(missing["detail"], "provider query parameter is required");
    let blank = app.get(&trial_path(&app, "")).await.expect(400).json();
    assert_eq!(blank["detail"], "provider query parameter is required");
    let unknown = app.get(&trial_path(&app, "mistral")).await.expect(400).json();
    assert_eq!(unknown["detail"], "Unsupported provider: mistral");
    assert_eq!(unknown["attr"], "provider");
}

#[tokio::test]
async fn trial_evaluations_lists_keyless_evaluations_of_the_provider() {
    let app = TestApp::spawn().await;
    let key = create_key(&app, "openai", "main").await;
    let keyless = create_evaluation_with(&app, "keyless", true, configuration("openai", None)).await;
    let unconfigured = create_evaluation(&app, evaluation_body("unconfigured")).await;
    create_evaluation_with(&app, "keyed", true, configuration("openai", Some(&key))).await;
    let anthropic = create_evaluation_with(&app, "anthropic", false, configuration("anthropic", None)).await;
    let deleted = create_evaluation_with(&app, "deleted", true, configuration("openai", None)).await;
    crate::evaluations::soft_delete(&app, &id_of(&deleted)).await;

    let openai = app.get(&trial_path(&app, "openai")).await.expect(200).json();
    let claude = app.get(&trial_path(&app, "Anthropic")).await.expect(200).json();
    let gemini = app.get(&trial_path(&app, "gemini")).await.expect(200).json();

    assert_eq!(
        openai,
        json!({"evaluations": [
            {"id": unconfigured["id"], "name": "unconfigured", "enabled": false},
            {"id": keyless["id"], "name": "keyless", "enabled": true},
        ]})
    );
    assert_eq!(listed(&claude), [id_of(&anthropic)], "unconfigured evaluations count for openai only");
    assert_eq!(claude["evaluations"][0]["enabled"], false);
    assert_eq!(gemini, json!({"evaluations": []}));
    app.get(&app.llma("provider_keys/trial_evaluations?provider=openai")).await.expect(200);
}

#[tokio::test]
async fn trial_evaluations_stops_at_50_and_stays_in_the_project() {
    let app = TestApp::spawn().await;
    for n in 0..52 {
        create_evaluation_with(&app, &format!("trial {n}"), false, configuration("gemini", None)).await;
    }
    let (other, other_admin) = other_project(&app);

    let answer = app.get(&trial_path(&app, "gemini")).await.expect(200).json();
    let theirs = app
        .request(
            Method::GET,
            &format!("/api/environments/{other}/llm_analytics/provider_keys/trial_evaluations/?provider=gemini"),
            Some(&other_admin),
            None,
        )
        .await
        .expect(200)
        .json();

    assert_eq!(listed(&answer).len(), 50);
    assert_eq!(answer["evaluations"][0]["name"], "trial 51", "newest first");
    assert_eq!(theirs, json!({"evaluations": []}));
}

// ---- assign ----

#[tokio::test]
async fn assign_needs_evaluation_ids() {
    let app = TestApp::spawn().await;
    let key = create_key(&app, "openai", "main").await;

    for body in [json!({}), json!({"evaluation_ids": []}), json!({"evaluation_ids": null, "enable": true})] {
        let error = app.post(&key_path(&app, &key, "assign/"), body.clone()).await.expect(400).json();
        assert_eq!(error["detail"], "evaluation_ids is required", "{body}");
        assert_eq!(error["attr"], "evaluation_ids");
    }
    let error =
        app.post(&key_path(&app, &key, "assign/"), json!({"evaluation_ids": ["nope"]})).await.expect(400).json();
    assert_eq!(error["attr"], "evaluation_ids[0]");
}

#[tokio::test]
async fn assigning_an_openai_key_configures_repoints_and_counts() {
    let app = TestApp::spawn().await;
    let key = create_key(&app, "openai", "main").await;
    let unconfigured = create_evaluation(&app, evaluation_body("unconfigured")).await;
    let keyless = create_evaluation_with(&app, "keyless", true, configuration("openai", None)).await;
    let anthropic = create_evaluation_with(&app, "anthropic", false, configuration("anthropic", None)).await;
    let bystander = create_evaluation_with(&app, "bystander", false, configuration("openai", None)).await;

    let answer = app
        .post(
            &key_path(&app, &key, "assign/"),
            json!({"evaluation_ids": [id_of(&unconfigured), id_of(&keyless), id_of(&anthropic)]}),
        )
        .await
        .expect(200)
        .json();

    assert_eq!(answer, json!({"configs_updated": 2, "evals_enabled": 0}));
    let configured = fetch(&app, &id_of(&unconfigured)).await;
    assert_eq!(
        configured["model_configuration"],
        json!({"provider": "openai", "model": "gpt-5-mini", "provider_key_id": key})
    );
    assert_eq!(configured["status"], "paused", "without enable nothing is enabled");
    assert_eq!(fetch(&app, &id_of(&keyless)).await["model_configuration"]["provider_key_id"], key.as_str());
    assert_eq!(fetch(&app, &id_of(&anthropic)).await["model_configuration"], anthropic["model_configuration"]);
    assert_eq!(fetch(&app, &id_of(&bystander)).await, bystander, "unlisted evaluations are untouched");
}

#[tokio::test]
async fn assigning_a_key_clears_errors_and_enables_on_request() {
    let app = TestApp::spawn().await;
    let doomed = create_key(&app, "anthropic", "doomed").await;
    let key = create_key(&app, "anthropic", "new").await;
    let failed = create_evaluation_with(&app, "failed", true, configuration("anthropic", Some(&doomed))).await;
    let also_failed =
        create_evaluation_with(&app, "also failed", true, configuration("anthropic", Some(&doomed))).await;
    let paused = create_evaluation_with(&app, "paused", false, configuration("anthropic", None)).await;
    let unconfigured = create_evaluation(&app, evaluation_body("unconfigured")).await;
    app.delete(&app.llma(&format!("provider_keys/{doomed}/"))).await.expect(204);
    assert_eq!(fetch(&app, &id_of(&failed)).await["status"], "error");

    let first = app
        .post(&key_path(&app, &key, "assign/"), json!({"evaluation_ids": [id_of(&failed)], "enable": false}))
        .await
        .expect(200)
        .json();
    assert_eq!(first, json!({"configs_updated": 1, "evals_enabled": 0}));
    let recovered = fetch(&app, &id_of(&failed)).await;
    assert_eq!(
        (recovered["status"].clone(), recovered["status_reason"].clone(), recovered["enabled"].clone()),
        (json!("paused"), Value::Null, json!(false))
    );

    let second = app
        .post(
            &key_path(&app, &key, "assign/"),
            json!({"evaluation_ids": [id_of(&also_failed), id_of(&paused), id_of(&unconfigured)], "enable": true}),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(second, json!({"configs_updated": 2, "evals_enabled": 3}), "anthropic keys configure nothing new");
    for evaluation in [&also_failed, &paused, &unconfigured] {
        let now = fetch(&app, &id_of(evaluation)).await;
        assert_eq!((now["enabled"].clone(), now["status"].clone()), (json!(true), json!("active")), "{now}");
    }
    assert_eq!(fetch(&app, &id_of(&unconfigured)).await["model_configuration"], Value::Null);
    assert_eq!(fetch(&app, &id_of(&paused)).await["model_configuration"]["provider_key_id"], key.as_str());
}

#[tokio::test]
async fn assign_ignores_other_projects_evaluations() {
    let app = TestApp::spawn().await;
    let key = create_key(&app, "openai", "main").await;
    let (other, other_admin) = other_project(&app);
    let theirs = app
        .request(
            Method::POST,
            &format!("/api/environments/{other}/evaluations/"),
            Some(&other_admin),
            Some(json!({"name": "theirs", "evaluation_type": "llm_judge", "evaluation_config": {"prompt": "p"}, "model_configuration": configuration("openai", None)})),
        )
        .await
        .expect(201)
        .json();

    let answer = app
        .post(&key_path(&app, &key, "assign/"), json!({"evaluation_ids": [id_of(&theirs)], "enable": true}))
        .await
        .expect(200)
        .json();

    assert_eq!(answer, json!({"configs_updated": 0, "evals_enabled": 0}));
    let after = app
        .request(
            Method::GET,
            &format!("/api/environments/{other}/evaluations/{}/", id_of(&theirs)),
            Some(&other_admin),
            None,
        )
        .await
        .expect(200)
        .json();
    assert_eq!(after, theirs);
}

#[tokio::test]
async fn assign_is_for_admins_with_the_write_scope_on_keys_of_the_project() {
    let app = TestApp::spawn().await;
    let key = create_key(&app, "openai", "main").await;
    let evaluation = create_evaluation(&app, evaluation_body("judge")).await;
    let body = json!({"evaluation_ids": [id_of(&evaluation)], "enable": true});
    let member = app.user_with_key("member@example.com", Some((app.project, "member")), "*", None);
    let reader = app.user_with_key("reader@example.com", Some((app.project, "admin")), "llm_provider_key:read", None);
    let evaluator = app.user_with_key("eval@example.com", Some((app.project, "admin")), "evaluation:write", None);
    let (other, other_admin) = other_project(&app);

    let denied = app
        .request(Method::POST, &key_path(&app, &key, "assign/"), Some(&member), Some(body.clone()))
        .await
        .expect(403)
        .json();
    assert_eq!(denied["detail"], "You don't have sufficient permissions in the project.");
    for caller in [&reader, &evaluator] {
        let denied = app
            .request(Method::POST, &key_path(&app, &key, "assign/"), Some(caller), Some(body.clone()))
            .await
            .expect(403)
            .json();
        assert!(denied["detail"].as_str().unwrap().contains("llm_provider_key:write"), "{denied}");
    }
    app.post(&key_path(&app, &Uuid::new_v4().to_string(), "assign/"), body.clone()).await.expect(404);
    let foreign = format!("/api/environments/{other}/llm_analytics/provider_keys/{key}/assign/");
    app.request(Method::POST, &foreign, Some(&other_admin), Some(body.clone())).await.expect(404);
    assert_eq!(fetch(&app, &id_of(&evaluation)).await, evaluation, "refusals change nothing");
    app.post(key_path(&app, &key, "assign").as_str(), body).await.expect(200);
}

// ---- delete and the evaluations using the key ----

#[tokio::test]
async fn deleting_a_key_without_replacement_stops_its_active_evaluations_with_a_reason() {
    let app = TestApp::spawn().await;
    let doomed = create_key(&app, "openai", "doomed").await;
    let kept = create_key(&app, "openai", "kept").await;
    let active = create_evaluation_with(&app, "active", true, configuration("openai", Some(&doomed))).await;
    let paused = create_evaluation_with(&app, "paused", false, configuration("openai", Some(&doomed))).await;
    let elsewhere = create_evaluation_with(&app, "elsewhere", true, configuration("openai", Some(&kept))).await;

    app.delete(&app.llma(&format!("provider_keys/{doomed}/"))).await.expect(204);

    let failed = fetch(&app, &id_of(&active)).await;
    assert_eq!(failed["enabled"], false);
    assert_eq!(failed["status"], "error");
    assert_eq!(failed["status_reason"], "provider_key_deleted");
    assert_eq!(failed["model_configuration"]["provider_key_id"], Value::Null);
    let still_paused = fetch(&app, &id_of(&paused)).await;
    assert_eq!((still_paused["status"].clone(), still_paused["status_reason"].clone()), (json!("paused"), Value::Null));
    assert_eq!(still_paused["model_configuration"]["provider_key_id"], Value::Null);
    assert_eq!(fetch(&app, &id_of(&elsewhere)).await, elsewhere);
}

#[tokio::test]
async fn deleting_a_key_with_a_replacement_keeps_its_evaluations_running_on_it() {
    let app = TestApp::spawn().await;
    let doomed = create_key(&app, "openai", "doomed").await;
    let replacement = create_key(&app, "openai", "replacement").await;
    let active = create_evaluation_with(&app, "active", true, configuration("openai", Some(&doomed))).await;

    app.delete(&app.llma(&format!("provider_keys/{doomed}/?replacement_key_id={replacement}"))).await.expect(204);

    let after = fetch(&app, &id_of(&active)).await;
    assert_eq!((after["enabled"].clone(), after["status"].clone()), (json!(true), json!("active")));
    assert_eq!(after["model_configuration"]["provider_key_id"], replacement.as_str());
    let dependents = app.get(&key_path(&app, &replacement, "dependent_configs/")).await.expect(200).json();
    assert_eq!(listed(&dependents), [id_of(&active)]);
}

#[tokio::test]
async fn a_refused_delete_leaves_the_evaluations_running() {
    let app = TestApp::spawn().await;
    let doomed = create_key(&app, "openai", "doomed").await;
    let claude = create_key(&app, "anthropic", "claude").await;
    let active = create_evaluation_with(&app, "active", true, configuration("openai", Some(&doomed))).await;

    app.delete(&app.llma(&format!("provider_keys/{doomed}/?replacement_key_id={claude}"))).await.expect(400);

    assert_eq!(fetch(&app, &id_of(&active)).await, active);
}
