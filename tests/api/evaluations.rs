//! Spec section 4: evaluations — CRUD with soft delete, the status invariants, conditions,
//! model configurations and their key checks, scopes and project isolation.

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

/// `/api/environments/{project}/evaluations/`.
pub fn evaluations_path(app: &TestApp) -> String {
    format!("/api/environments/{}/evaluations/", app.project)
}

/// `/api/environments/{project}/evaluations/{id}/`.
pub fn evaluation_path(app: &TestApp, id: &str) -> String {
    format!("{}{id}/", evaluations_path(app))
}

/// The smallest valid create body.
pub fn evaluation_body(name: &str) -> Value {
    json!({"name": name, "evaluation_type": "llm_judge", "evaluation_config": {"prompt": "Is the answer polite?"}})
}

/// Soft-deletes an evaluation the way the reference's clients do (DELETE is a 405).
pub async fn soft_delete(app: &TestApp, id: &str) {
    app.patch(&evaluation_path(app, id), json!({"deleted": true})).await.expect(200);
}

/// The `id` of a JSON object.
pub fn id_of(value: &Value) -> String {
    value["id"].as_str().unwrap_or_else(|| panic!("no id in {value}")).to_owned()
}

/// Creates an evaluation with the admin key; returns its JSON.
pub async fn create_evaluation(app: &TestApp, body: Value) -> Value {
    app.post(&evaluations_path(app), body).await.expect(201).json()
}

/// Creates an evaluation whose model configuration is `provider`/`model` with `key`.
pub async fn create_evaluation_with(app: &TestApp, name: &str, enabled: bool, configuration: Value) -> Value {
    let mut body = evaluation_body(name);
    body["enabled"] = json!(enabled);
    body["model_configuration"] = configuration;
    create_evaluation(app, body).await
}

/// A model configuration body.
pub fn configuration(provider: &str, key: Option<&str>) -> Value {
    json!({"provider": provider, "model": "judge-model", "provider_key_id": key})
}

/// Stores a key of `provider` (not azure) that the fake provider accepts; returns its id.
pub async fn create_key(app: &TestApp, provider: &str, name: &str) -> String {
    fake::accept_models(&app.providers, provider).await;
    let suffix = Uuid::new_v4().simple().to_string();
    let api_key = match provider {
        "openai" => format!("sk-test-{suffix}"),
        "anthropic" => format!("sk-ant-test-{suffix}"),
        _ => format!("test-key-{suffix}"),
    };
    let body = json!({"provider": provider, "name": name, "api_key": api_key});
    id_of(&app.post(&app.llma("provider_keys/"), body).await.expect(201).json())
}

/// A second project with an admin whose `*` key reaches only it.
pub fn other_project(app: &TestApp) -> (i64, String) {
    let other = app.cli(&["admin", "create-project", "--name", "Other"])["id"].as_i64().unwrap();
    let key = app.user_with_key(&format!("admin-{other}@other.example.com"), Some((other, "admin")), "*", None);
    (other, key)
}

/// An openai key stored by another project's admin, as that project's API returns it.
pub async fn key_of_another_project(app: &TestApp) -> Value {
    let (other, other_admin) = other_project(app);
    fake::accept_models(&app.providers, "openai").await;
    app.request(
        Method::POST,
        &format!("/api/environments/{other}/llm_analytics/provider_keys/"),
        Some(&other_admin),
        Some(json!({"provider": "openai", "name": "theirs", "api_key": "sk-test-foreign-12345"})),
    )
    .await
    .expect(201)
    .json()
}

/// The evaluation as the API returns it now.
pub async fn fetch(app: &TestApp, id: &str) -> Value {
    app.get(&evaluation_path(app, id)).await.expect(200).json()
}

async fn put(app: &TestApp, path: &str, body: Value) -> Reply {
    app.request(Method::PUT, path, Some(&app.admin_key.clone()), Some(body)).await
}

async fn stored_rows(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM evaluations").fetch_one(&app.db.pool).await.unwrap()
}

#[track_caller]
fn assert_attr(reply: Reply, attr: &str) -> Value {
    let body = reply.expect(400).json();
    assert_eq!(body["attr"], attr, "{body}");
    assert_eq!(body["type"], "validation_error", "{body}");
    body
}

// ---- create ----

#[tokio::test]
async fn create_is_201_with_every_field_and_the_defaults() {
    let app = TestApp::spawn().await;

    let evaluation = create_evaluation(&app, evaluation_body("  Politeness  ")).await;

    assert!(Uuid::parse_str(&id_of(&evaluation)).is_ok());
    assert_eq!(evaluation["name"], "Politeness");
    assert_eq!(evaluation["description"], "");
    assert_eq!(evaluation["enabled"], false);
    assert_eq!(evaluation["status"], "paused");
    assert_eq!(evaluation["status_reason"], Value::Null);
    assert_eq!(evaluation["evaluation_type"], "llm_judge");
    assert_eq!(evaluation["evaluation_config"], json!({"prompt": "Is the answer polite?"}));
    assert_eq!(evaluation["output_type"], "boolean");
    assert_eq!(evaluation["conditions"], json!([]));
    assert_eq!(evaluation["model_configuration"], Value::Null);
    assert_eq!(evaluation["max_runs_per_hour"], Value::Null);
    assert_eq!((evaluation["target"].clone(), evaluation["target_config"].clone()), (json!("generation"), Value::Null));
    assert_eq!(evaluation["status_reason_detail"], Value::Null);
    assert_eq!(evaluation["deleted"], false);
    assert_eq!(evaluation["created_by"]["email"], "admin@example.com");
    assert_eq!(evaluation["created_by"]["hedgehog_config"], json!({}));
    for field in ["created_at", "updated_at"] {
        let at = evaluation[field].as_str().unwrap();
        assert!(
            at.len() >= 20 && at.as_bytes()[10] == b'T' && (at.ends_with('Z') || at.contains('+')),
            "{field}: {at}"
        );
    }
    let mut fields: Vec<&str> = evaluation.as_object().unwrap().keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "conditions",
            "created_at",
            "created_by",
            "deleted",
            "description",
            "enabled",
            "evaluation_config",
            "evaluation_type",
            "id",
            "max_runs_per_hour",
            "model_configuration",
            "name",
            "output_config",
            "output_type",
            "status",
            "status_reason",
            "status_reason_detail",
            "target",
            "target_config",
            "updated_at"
        ]
    );
    assert_eq!(fetch(&app, &id_of(&evaluation)).await, evaluation);
}

#[tokio::test]
async fn a_full_evaluation_round_trips_and_enabled_makes_it_active() {
    let app = TestApp::spawn().await;
    let key = create_key(&app, "anthropic", "claude").await;
    let conditions = json!([
        {"id": "models", "rollout_percentage": 50, "properties": [
            {"key": "$ai_model", "operator": "exact", "value": ["gpt-4o", "gpt-5"]},
            {"key": "$ai_model", "operator": "is_not", "value": "gpt-3"},
            {"key": "$ai_provider", "operator": "icontains", "value": "open"},
            {"key": "$ai_model", "operator": "regex", "value": "^gpt-(4|5)"},
            {"key": "$ai_trace_id", "operator": "is_set", "value": null},
            {"key": "$ai_error", "operator": "is_not_set", "value": null},
            {"key": "$ai_latency", "operator": "gt", "value": 0.5},
            {"key": "$ai_total_cost_usd", "operator": "lt", "value": 2}
        ]},
        {"rollout_percentage": 12.5, "properties": []}
    ]);
    let body = json!({
        "name": "Helpfulness",
        "description": "Does it help?",
        "enabled": true,
        "evaluation_type": "llm_judge",
        "evaluation_config": {"prompt": "Is the answer helpful?"},
        "output_type": "boolean_with_na",
        "conditions": conditions,
        "model_configuration": {"provider": "anthropic", "model": "claude-haiku-4-5", "provider_key_id": key},
    });

    let evaluation = create_evaluation(&app, body).await;

    assert_eq!((evaluation["enabled"].clone(), evaluation["status"].clone()), (json!(true), json!("active")));
    assert_eq!(evaluation["output_type"], "boolean_with_na");
    assert_eq!(evaluation["description"], "Does it help?");
    assert_eq!(
        evaluation["model_configuration"],
        json!({"provider": "anthropic", "model": "claude-haiku-4-5", "provider_key_id": key})
    );
    let stored = evaluation["conditions"].as_array().unwrap();
    assert_eq!(stored[0], conditions[0]);
    assert!(Uuid::parse_str(stored[1]["id"].as_str().unwrap()).is_ok(), "a missing condition id is generated");
    assert_eq!(stored[1]["rollout_percentage"], 12.5);
    assert_eq!(fetch(&app, &id_of(&evaluation)).await, evaluation);
}

#[tokio::test]
async fn invalid_fields_are_400_naming_the_field_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let with = |field: &str, value: Value| {
        let mut body = evaluation_body("judge");
        body[field] = value;
        body
    };
    let condition = |filter: Value| with("conditions", json!([{"properties": [filter]}]));
    let cases = [
        (json!({"evaluation_config": {"prompt": "x"}}), "name"),
        (with("name", json!("   ")), "name"),
        (with("name", json!("x".repeat(401))), "name"),
        (json!({"name": "judge", "evaluation_config": {"prompt": "x"}}), "evaluation_type"),
        (json!({"name": "judge", "evaluation_type": "llm_judge"}), "evaluation_config"),
        (with("evaluation_config", json!({})), "evaluation_config.prompt"),
        (with("evaluation_config", json!({"prompt": " \n "})), "evaluation_config.prompt"),
        (with("evaluation_type", json!("python")), "evaluation_type"),
        (with("output_type", json!("score")), "output_type"),
        (with("enabled", json!("yes")), "enabled"),
        (with("conditions", json!([{"rollout_percentage": 150}])), "conditions[0].rollout_percentage"),
        (with("conditions", json!([{"rollout_percentage": -1}])), "conditions[0].rollout_percentage"),
        (condition(json!({"key": "a", "operator": "contains", "value": "x"})), "conditions[0].properties[0].operator"),
        (condition(json!({"key": "a", "operator": "regex", "value": "gpt-(4"})), "conditions[0].properties[0].value"),
        (condition(json!({"key": "a", "operator": "gt", "value": "many"})), "conditions[0].properties[0].value"),
        (condition(json!({"key": "", "operator": "exact", "value": "x"})), "conditions[0].properties[0].key"),
        (with("model_configuration", json!({"provider": "mistral", "model": "m"})), "model_configuration.provider"),
        (with("model_configuration", json!({"model": "m"})), "model_configuration.provider"),
        (with("model_configuration", json!({"provider": "openai", "model": " "})), "model_configuration.model"),
        (
            with("model_configuration", json!({"provider": "openai", "model": "m", "provider_key_id": "nope"})),
            "model_configuration.provider_key_id",
        ),
    ];
    for (body, attr) in cases {
        let reply = app.post(&evaluations_path(&app), body.clone()).await;
        assert_eq!(reply.status.as_u16(), 400, "{body}: {}", reply.text);
        assert_eq!(reply.json()["attr"], attr, "{body}: {}", reply.text);
    }
    let regex =
        app.post(&evaluations_path(&app), condition(json!({"key": "a", "operator": "regex", "value": "("}))).await;
    assert!(regex.json()["detail"].as_str().unwrap().starts_with("Invalid regular expression"), "{}", regex.text);
    assert_eq!(stored_rows(&app).await, 0);
}

#[tokio::test]
async fn a_model_configuration_may_only_use_a_key_of_the_project_for_its_provider() {
    let app = TestApp::spawn().await;
    let openai = create_key(&app, "openai", "mine").await;
    let anthropic = create_key(&app, "anthropic", "claude").await;
    let foreign = key_of_another_project(&app).await;

    let mut body = evaluation_body("judge");
    body["model_configuration"] = configuration("openai", Some(&id_of(&foreign)));
    let error =
        assert_attr(app.post(&evaluations_path(&app), body.clone()).await, "model_configuration.provider_key_id");
    assert_eq!(error["detail"], "Provider key not found.");
    body["model_configuration"] = configuration("openai", Some(&Uuid::new_v4().to_string()));
    assert_attr(app.post(&evaluations_path(&app), body.clone()).await, "model_configuration.provider_key_id");
    body["model_configuration"] = configuration("openai", Some(&anthropic));
    let error =
        assert_attr(app.post(&evaluations_path(&app), body.clone()).await, "model_configuration.provider_key_id");
    assert_eq!(error["detail"], "The provider key belongs to anthropic, not openai.");
    assert_eq!(stored_rows(&app).await, 0);

    body["model_configuration"] = configuration("openai", Some(&openai));
    let evaluation = create_evaluation(&app, body.clone()).await;
    assert_eq!(evaluation["model_configuration"]["provider_key_id"], openai.as_str());
    let patched = app
        .patch(
            &evaluation_path(&app, &id_of(&evaluation)),
            json!({"model_configuration": configuration("openai", Some(&anthropic))}),
        )
        .await;
    assert_attr(patched, "model_configuration.provider_key_id");
    assert_eq!(fetch(&app, &id_of(&evaluation)).await["model_configuration"]["provider_key_id"], openai.as_str());
}

#[tokio::test]
async fn a_keyless_model_configuration_is_accepted_for_trial_credits() {
    let app = TestApp::spawn().await;
    let mut body = evaluation_body("judge");
    body["model_configuration"] = json!({"provider": "OpenAI", "model": "gpt-5-mini"});

    let evaluation = create_evaluation(&app, body).await;

    assert_eq!(
        evaluation["model_configuration"],
        json!({"provider": "openai", "model": "gpt-5-mini", "provider_key_id": null})
    );
}

// ---- list / retrieve ----

#[tokio::test]
async fn list_returns_the_live_evaluations_newest_first_in_the_envelope() {
    let app = TestApp::spawn().await;
    let first = create_evaluation(&app, evaluation_body("first")).await;
    let doomed = create_evaluation(&app, evaluation_body("doomed")).await;
    let last = create_evaluation(&app, evaluation_body("last")).await;
    soft_delete(&app, &id_of(&doomed)).await;

    let list = app.get(&evaluations_path(&app)).await.expect(200).json();

    assert_eq!(list["count"], 2);
    assert_eq!(list["next"], Value::Null);
    assert_eq!(list["previous"], Value::Null);
    assert_eq!(list["results"], json!([last, first]));

    let page = app.get(&format!("{}?limit=1&offset=1", evaluations_path(&app))).await.expect(200).json();
    assert_eq!(page["results"], json!([first]));
    let previous = page["previous"].as_str().unwrap();
    assert!(previous.starts_with("http://") && previous.ends_with("limit=1&offset=0"), "{previous}");
    assert_attr(app.get(&format!("{}?limit=-1", evaluations_path(&app))).await, "limit");
}

#[tokio::test]
async fn paths_work_without_the_trailing_slash_and_odd_ids_are_404() {
    let app = TestApp::spawn().await;
    let path = evaluations_path(&app);
    let evaluation = app.post(path.trim_end_matches('/'), evaluation_body("judge")).await.expect(201).json();
    app.get(path.trim_end_matches('/')).await.expect(200);
    app.get(evaluation_path(&app, &id_of(&evaluation)).trim_end_matches('/')).await.expect(200);
    app.get(&evaluation_path(&app, "not-a-uuid")).await.expect(404);
    app.get(&evaluation_path(&app, &Uuid::new_v4().to_string())).await.expect(404);
}

// ---- update ----

#[tokio::test]
async fn patch_changes_only_the_fields_sent_and_derives_the_status_from_enabled() {
    let app = TestApp::spawn().await;
    let evaluation = create_evaluation(&app, evaluation_body("judge")).await;
    let path = evaluation_path(&app, &id_of(&evaluation));

    let renamed =
        app.patch(&path, json!({"name": "renamed", "status": "error", "id": "forged"})).await.expect(200).json();
    assert_eq!(renamed["name"], "renamed");
    assert_eq!(renamed["status"], "paused", "status is read-only");
    assert_eq!(renamed["id"], evaluation["id"]);
    assert_eq!(renamed["evaluation_config"], evaluation["evaluation_config"]);
    assert_eq!(renamed["created_at"], evaluation["created_at"]);
    assert_ne!(renamed["updated_at"], evaluation["updated_at"]);

    let enabled = app.patch(&path, json!({"enabled": true})).await.expect(200).json();
    assert_eq!((enabled["enabled"].clone(), enabled["status"].clone()), (json!(true), json!("active")));
    let disabled = app.patch(&path, json!({"enabled": false})).await.expect(200).json();
    assert_eq!((disabled["enabled"].clone(), disabled["status"].clone()), (json!(false), json!("paused")));
    assert_eq!(disabled["status_reason"], Value::Null);
}

/// PATCHes `enabled: true` with a model configuration on `key`; the answer must be 200.
async fn enable_with_key(app: &TestApp, path: &str, key: &str) -> Value {
    app.patch(path, json!({"enabled": true, "model_configuration": configuration("openai", Some(key))}))
        .await
        .expect(200)
        .json()
}

/// An enabled evaluation whose key was then deleted: its id and its JSON, in
/// `error/provider_key_deleted` with no key in its model configuration.
async fn evaluation_whose_key_was_deleted(app: &TestApp) -> (String, Value) {
    let key = create_key(app, "openai", "doomed").await;
    let evaluation = create_evaluation_with(app, "judge", true, configuration("openai", Some(&key))).await;
    app.delete(&app.llma(&format!("provider_keys/{key}/"))).await.expect(204);
    let failed = fetch(app, &id_of(&evaluation)).await;
    assert_eq!(
        (failed["status"].clone(), failed["status_reason"].clone()),
        (json!("error"), json!("provider_key_deleted"))
    );
    (id_of(&evaluation), failed)
}

#[tokio::test]
async fn an_evaluation_in_error_keeps_its_reason_until_it_is_enabled() {
    let app = TestApp::spawn().await;
    let (evaluation, _) = evaluation_whose_key_was_deleted(&app).await;
    let path = evaluation_path(&app, &evaluation);

    let renamed = app.patch(&path, json!({"name": "still failing", "enabled": false})).await.expect(200).json();
    assert_eq!(
        (renamed["status"].clone(), renamed["status_reason"].clone()),
        (json!("error"), json!("provider_key_deleted"))
    );

    let replacement = create_key(&app, "openai", "replacement").await;
    let enabled = enable_with_key(&app, &path, &replacement).await;
    assert_eq!(enabled["status"], "active");
    assert_eq!(enabled["status_reason"], Value::Null, "enabling clears the reason");
    assert_eq!(enabled["enabled"], true);
}

#[tokio::test]
async fn the_model_configuration_can_be_replaced_and_removed() {
    let app = TestApp::spawn().await;
    let key = create_key(&app, "gemini", "gemini").await;
    let evaluation = create_evaluation(&app, evaluation_body("judge")).await;
    let path = evaluation_path(&app, &id_of(&evaluation));

    let added =
        app.patch(&path, json!({"model_configuration": configuration("openai", None)})).await.expect(200).json();
    assert_eq!(added["model_configuration"], configuration("openai", None));
    let keyed =
        app.patch(&path, json!({"model_configuration": configuration("google", Some(&key))})).await.expect(200).json();
    assert_eq!(keyed["model_configuration"], configuration("gemini", Some(&key)));
    let untouched = app.patch(&path, json!({"description": "kept"})).await.expect(200).json();
    assert_eq!(untouched["model_configuration"], keyed["model_configuration"]);
    let removed = app.patch(&path, json!({"model_configuration": null})).await.expect(200).json();
    assert_eq!(removed["model_configuration"], Value::Null);
    let configurations: i64 =
        sqlx::query_scalar("SELECT count(*) FROM model_configurations").fetch_one(&app.db.pool).await.unwrap();
    assert_eq!(configurations, 0, "a removed configuration is not left behind");
}

#[tokio::test]
async fn put_needs_name_and_evaluation_config_and_replaces_them() {
    let app = TestApp::spawn().await;
    let evaluation = create_evaluation(&app, evaluation_body("judge")).await;
    let path = evaluation_path(&app, &id_of(&evaluation));

    assert_attr(put(&app, &path, json!({"evaluation_config": {"prompt": "p"}})).await, "name");
    assert_attr(put(&app, &path, json!({"name": "n"})).await, "evaluation_config");
    let replaced =
        put(&app, &path, json!({"name": "new", "evaluation_config": {"prompt": "Is it correct?"}, "enabled": true}))
            .await
            .expect(200)
            .json();

    assert_eq!(replaced["name"], "new");
    assert_eq!(replaced["evaluation_config"]["prompt"], "Is it correct?");
    assert_eq!(replaced["status"], "active");
    assert_eq!(fetch(&app, &id_of(&evaluation)).await, replaced);
}

// ---- delete ----

#[tokio::test]
async fn delete_is_405_and_changes_nothing_as_the_reference_answers() {
    let app = TestApp::spawn().await;
    let evaluation = create_evaluation(&app, evaluation_body("judge")).await;
    let path = evaluation_path(&app, &id_of(&evaluation));

    let reply = app.delete(&path).await.expect(405);

    assert_eq!(
        reply.json(),
        json!({"type": "invalid_request", "code": "method_not_allowed", "attr": null,
               "detail": "Hard delete of this model is not allowed. Use a patch API call to set \"deleted\" to true"})
    );
    assert_eq!(fetch(&app, &id_of(&evaluation)).await, evaluation, "the evaluation is untouched");
    app.delete(&evaluation_path(&app, &Uuid::new_v4().to_string())).await.expect(405);
    let reader = app.user_with_key("reader@example.com", Some((app.project, "admin")), "evaluation:read", None);
    app.request(Method::DELETE, &path, Some(&reader), None).await.expect(403);
    app.request(Method::DELETE, &path, None, None).await.expect(401);

    soft_delete(&app, &id_of(&evaluation)).await;
    app.get(&path).await.expect(404);
    app.patch(&path, json!({"name": "zombie"})).await.expect(404);
    assert_eq!(app.get(&evaluations_path(&app)).await.expect(200).json()["count"], 0);
    let deleted: bool = sqlx::query_scalar("SELECT deleted FROM evaluations WHERE id = $1")
        .bind(Uuid::parse_str(&id_of(&evaluation)).unwrap())
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert!(deleted, "the row is kept, marked deleted");
}

#[tokio::test]
async fn patching_deleted_true_also_soft_deletes() {
    let app = TestApp::spawn().await;
    let evaluation = create_evaluation(&app, evaluation_body("judge")).await;
    let path = evaluation_path(&app, &id_of(&evaluation));

    let answer = app.patch(&path, json!({"deleted": true})).await.expect(200).json();

    assert_eq!(answer["deleted"], true);
    app.get(&path).await.expect(404);
    assert_eq!(stored_rows(&app).await, 1);
}

// ---- access ----

#[tokio::test]
async fn evaluation_read_may_read_and_evaluation_write_may_write() {
    let app = TestApp::spawn().await;
    let evaluation = create_evaluation(&app, evaluation_body("judge")).await;
    let path = evaluation_path(&app, &id_of(&evaluation));
    let reader = app.user_with_key("reader@example.com", Some((app.project, "admin")), "evaluation:read", None);
    let writer = app.user_with_key("writer@example.com", Some((app.project, "member")), "evaluation:write", None);
    let keys_only = app.user_with_key("keys@example.com", Some((app.project, "admin")), "llm_provider_key:write", None);

    app.request(Method::GET, &evaluations_path(&app), Some(&reader), None).await.expect(200);
    app.request(Method::GET, &path, Some(&reader), None).await.expect(200);
    for (method, target, body) in [
        (Method::POST, evaluations_path(&app), Some(evaluation_body("x"))),
        (Method::PATCH, path.clone(), Some(json!({"name": "x"}))),
        (Method::PUT, path.clone(), Some(evaluation_body("x"))),
        (Method::DELETE, path.clone(), None),
    ] {
        let denied = app.request(method, &target, Some(&reader), body).await.expect(403).json();
        assert!(denied["detail"].as_str().unwrap().contains("evaluation:write"), "{denied}");
    }
    let denied = app.request(Method::GET, &evaluations_path(&app), Some(&keys_only), None).await.expect(403).json();
    assert!(denied["detail"].as_str().unwrap().contains("evaluation:read"), "{denied}");
    app.request(Method::GET, &evaluations_path(&app), None, None).await.expect(401);

    // Members (not only admins) write evaluations; write implies read.
    app.request(Method::POST, &evaluations_path(&app), Some(&writer), Some(evaluation_body("by member")))
        .await
        .expect(201);
    app.request(Method::PATCH, &path, Some(&writer), Some(json!({"enabled": true}))).await.expect(200);
    app.request(Method::GET, &path, Some(&writer), None).await.expect(200);
    app.request(Method::DELETE, &path, Some(&writer), None).await.expect(405);
    app.request(Method::PATCH, &path, Some(&writer), Some(json!({"deleted": true}))).await.expect(200);
}

#[tokio::test]
async fn evaluations_of_another_project_are_404() {
    let app = TestApp::spawn().await;
    let evaluation = create_evaluation(&app, evaluation_body("mine")).await;
    let (other, other_admin) = other_project(&app);
    let theirs = format!("/api/environments/{other}/evaluations/{}/", id_of(&evaluation));

    app.request(Method::GET, &theirs, Some(&other_admin), None).await.expect(404);
    app.request(Method::PATCH, &theirs, Some(&other_admin), Some(json!({"enabled": true}))).await.expect(404);
    app.request(Method::PATCH, &theirs, Some(&other_admin), Some(json!({"deleted": true}))).await.expect(404);
    app.request(Method::DELETE, &theirs, Some(&other_admin), None).await.expect(405);
    let list = app
        .request(Method::GET, &format!("/api/environments/{other}/evaluations/"), Some(&other_admin), None)
        .await
        .expect(200)
        .json();
    assert_eq!(list["count"], 0);
    // a project the key cannot reach
    app.request(Method::GET, &evaluations_path(&app), Some(&other_admin), None).await.expect(404);
    assert_eq!(fetch(&app, &id_of(&evaluation)).await, evaluation);
}

#[tokio::test]
async fn the_openapi_document_describes_the_evaluation_endpoints() {
    let app = TestApp::spawn().await;
    let schema = app.request(Method::GET, "/api/schema/", None, None).await.expect(200).json();
    let paths = schema["paths"].as_object().unwrap();
    for path in [
        "/api/environments/{project_id}/evaluations/",
        "/api/environments/{project_id}/evaluations/{id}/",
        "/api/environments/{project_id}/llm_analytics/evaluation_config/",
        "/api/environments/{project_id}/llm_analytics/evaluation_config/set_active_key/",
        "/api/environments/{project_id}/llm_analytics/provider_keys/{id}/dependent_configs/",
        "/api/environments/{project_id}/llm_analytics/provider_keys/trial_evaluations/",
        "/api/environments/{project_id}/llm_analytics/provider_keys/{id}/assign/",
    ] {
        assert!(paths.contains_key(path), "{path} missing from the schema");
    }
    assert!(schema["components"]["schemas"]["EvaluationDto"].is_object());
}

// ---- list filters, agent lists, enabling guards (the reference's own API tests) ----

#[tokio::test]
async fn search_and_enabled_filter_the_list_combine_and_page() {
    let app = TestApp::spawn().await;
    let mut accuracy = evaluation_body("Accuracy Evaluation");
    accuracy["description"] = json!("Tests accuracy");
    accuracy["enabled"] = json!(true);
    let accuracy = id_of(&create_evaluation(&app, accuracy).await);
    let mut performance = evaluation_body("Performance Evaluation");
    performance["description"] = json!("Tests PERFORMANCE");
    let performance = id_of(&create_evaluation(&app, performance).await);
    let mut latency = evaluation_body("Latency");
    latency["description"] = json!("tests how fast");
    let latency = id_of(&create_evaluation(&app, latency).await);
    let names = |list: &Value| -> Vec<String> { list["results"].as_array().unwrap().iter().map(id_of).collect() };
    let list = |query: &'static str| {
        let path = format!("{}?{query}", evaluations_path(&app));
        let app = &app;
        async move { app.get(&path).await.expect(200).json() }
    };

    assert_eq!(names(&list("search=accuracy").await), vec![accuracy.clone()], "by name, any case");
    assert_eq!(names(&list("search=performance").await), vec![performance.clone()], "by description, any case");
    assert_eq!(names(&list("enabled=true").await), vec![accuracy.clone()]);
    assert_eq!(names(&list("enabled=false").await), [latency.clone(), performance.clone()]);
    assert_eq!(names(&list("search=TESTS&enabled=false").await), [latency.clone(), performance.clone()]);
    assert_eq!(names(&list("search=nothing%20like%20it").await), Vec::<String>::new());
    assert_eq!(list("search=").await["count"], 3, "an empty search filters nothing");

    let first = list("search=tests&limit=2").await;
    assert_eq!((first["count"].clone(), names(&first).len()), (json!(3), 2));
    let next = first["next"].as_str().unwrap();
    assert!(next.contains("search=tests"), "the next link keeps the filter: {next}");
    let rest = list("search=tests&limit=2&offset=2").await;
    assert_eq!(names(&rest), [accuracy]);

    let error = app.get(&format!("{}?enabled=maybe", evaluations_path(&app))).await.expect(400).json();
    assert_eq!((error["attr"].clone(), error["type"].clone()), (json!("enabled"), json!("validation_error")));
}

#[tokio::test]
async fn agent_tools_get_the_slim_list_and_the_full_evaluation_on_retrieve() {
    let app = TestApp::spawn().await;
    let mut body = evaluation_body("Evaluation 1");
    body["conditions"] = json!([{"id": "c1", "rollout_percentage": 100, "properties": []}]);
    body["model_configuration"] = configuration("openai", None);
    let evaluation = create_evaluation(&app, body).await;

    let list = app.get_as_client(&evaluations_path(&app), "mcp").await;
    let item = list["results"][0].as_object().unwrap().clone();
    for dropped in ["evaluation_config", "output_config", "conditions", "model_configuration", "created_by", "deleted"]
    {
        assert!(!item.contains_key(dropped), "{dropped} is in the agent's list item: {item:?}");
    }
    for kept in ["id", "name", "evaluation_type", "output_type", "enabled", "status", "status_reason"] {
        assert_eq!(item[kept], evaluation[kept], "{kept}");
    }
    assert_eq!(list["count"], 1);
    let full = app.get(&evaluations_path(&app)).await.expect(200).json();
    assert_eq!(full["results"][0], evaluation, "other clients keep the whole item");
    assert_eq!(
        app.get_as_client(&evaluation_path(&app, &id_of(&evaluation)), "mcp").await,
        evaluation,
        "retrieve stays whole"
    );
}

#[tokio::test]
async fn enabling_an_evaluation_on_used_up_trial_credits_is_refused() {
    let app = TestApp::spawn().await;
    let paused = create_evaluation_with(&app, "Trial Eval", false, configuration("openai", None)).await;
    sqlx::query(
        "INSERT INTO evaluation_configs (project_id, trial_eval_limit, trial_evals_used) VALUES ($1, 100, 100)",
    )
    .bind(app.project)
    .execute(&app.db.pool)
    .await
    .unwrap();
    let path = evaluation_path(&app, &id_of(&paused));
    const SENTENCE: &str = "Trial evaluation limit reached. Add a provider API key to re-enable this evaluation.";

    let error = app.patch(&path, json!({"enabled": true})).await.expect(400).json();
    assert_eq!((error["attr"].clone(), error["detail"].clone()), (json!("enabled"), json!(SENTENCE)));
    assert_eq!(fetch(&app, &id_of(&paused)).await, paused, "nothing changed");
    let mut created = evaluation_body("enabled on trial");
    created["enabled"] = json!(true);
    let error = app.post(&evaluations_path(&app), created).await.expect(400).json();
    assert_eq!(error["detail"], SENTENCE);
    assert_eq!(stored_rows(&app).await, 1, "nothing stored");

    let key = create_key(&app, "openai", "byok").await;
    let enabled = enable_with_key(&app, &path, &key).await;
    assert_eq!(enabled["status"], "active", "a key of its own lifts the guard");

    let other = create_evaluation_with(&app, "on the active key", false, configuration("openai", None)).await;
    app.post(&app.llma("evaluation_config/set_active_key/"), json!({"key_id": key})).await.expect(200);
    let enabled = app.patch(&evaluation_path(&app, &id_of(&other)), json!({"enabled": true})).await.expect(200);
    assert_eq!(enabled.json()["status"], "active", "the project's usable active key pays");
}

#[tokio::test]
async fn enabling_with_trial_credits_left_is_allowed() {
    let app = TestApp::spawn().await;
    sqlx::query("INSERT INTO evaluation_configs (project_id, trial_eval_limit, trial_evals_used) VALUES ($1, 100, 50)")
        .bind(app.project)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let paused = create_evaluation_with(&app, "Trial Eval", false, configuration("openai", None)).await;

    let enabled = app.patch(&evaluation_path(&app, &id_of(&paused)), json!({"enabled": true})).await.expect(200);

    assert_eq!(enabled.json()["status"], "active");
}

#[tokio::test]
async fn re_enabling_after_the_key_was_deleted_needs_a_key_again() {
    let app = TestApp::spawn().await;
    let (evaluation, failed) = evaluation_whose_key_was_deleted(&app).await;
    let path = evaluation_path(&app, &evaluation);

    let error = app.patch(&path, json!({"enabled": true})).await.expect(400).json();
    assert_eq!(error["attr"], "enabled");
    assert!(error["detail"].as_str().unwrap().contains("provider API key"), "{error}");
    assert_eq!(fetch(&app, &evaluation).await, failed, "it stays in error, not moved to trial credits");
    let error = app
        .patch(&path, json!({"enabled": true, "model_configuration": configuration("openai", None)}))
        .await
        .expect(400)
        .json();
    assert!(error["detail"].as_str().unwrap().contains("provider API key"), "{error}");

    let replacement = create_key(&app, "openai", "replacement").await;
    let enabled = enable_with_key(&app, &path, &replacement).await;
    assert_eq!((enabled["status"].clone(), enabled["status_reason"].clone()), (json!("active"), Value::Null));
}

#[tokio::test]
async fn the_openapi_document_has_the_list_filters_the_agent_header_and_the_405() {
    let app = TestApp::spawn().await;
    let schema = app.request(Method::GET, "/api/schema/", None, None).await.expect(200).json();
    let list = &schema["paths"]["/api/environments/{project_id}/evaluations/"]["get"];
    let params: Vec<&str> =
        list["parameters"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    for name in ["search", "enabled", "limit", "offset", "X-PostHog-Client"] {
        assert!(params.contains(&name), "{name} missing from {params:?}");
    }
    let delete = &schema["paths"]["/api/environments/{project_id}/evaluations/{id}/"]["delete"];
    assert!(delete["responses"]["405"].is_object(), "{delete}");
    assert!(delete["responses"].get("204").is_none(), "{delete}");
    let reports = &schema["paths"]["/api/environments/{project_id}/llm_analytics/evaluation_reports/"]["get"];
    let params: Vec<&str> =
        reports["parameters"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert!(params.contains(&"X-PostHog-Client"), "{params:?}");
}
