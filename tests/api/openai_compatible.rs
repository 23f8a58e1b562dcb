//! Spec section 1.1: keys of OpenAI-compatible endpoints (vLLM, Ollama, a LiteLLM proxy, an
//! in-house gateway) — checked at the endpoint, bound to it, shown masked, listed, judging
//! through JSON mode where the server has no `json_schema`, and refused inside the network
//! unless the operator allows it.

use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::evaluations::evaluations_path;
use crate::helpers::*;
use crate::judge::{DEADLINE, generation, send};

const KEY: &str = "local-key-123456";
const TENANT_SECRET: &str = "tenant-secret-42";
const CUSTOM_MODEL: &str = "llama3.1:8b";

fn endpoint(app: &TestApp, name: &str) -> String {
    format!("{}/{name}/v1", app.providers.uri())
}

/// An endpoint at `/{name}/v1` without `/models` that accepts the key (and the tenant
/// header) for a one-token completion.
async fn serve_endpoint_without_models(app: &TestApp, name: &str) {
    Mock::given(method("GET"))
        .and(path(format!("/{name}/v1/models")))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"detail": "Not Found"})))
        .mount(&app.providers)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/{name}/v1/chat/completions")))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .and(header("x-tenant", TENANT_SECRET))
        .and(body_partial_json(json!({"model": CUSTOM_MODEL, "max_tokens": 1})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "cmpl-1", "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "p"}, "finish_reason": "length"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
        })))
        .mount(&app.providers)
        .await;
}

/// An endpoint at `/{name}/v1` whose `/models` lists one model.
async fn serve_endpoint_with_models(app: &TestApp, name: &str) {
    Mock::given(method("GET"))
        .and(path(format!("/{name}/v1/models")))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"object": "list", "data": [
            {"id": "qwen2.5:7b", "object": "model", "created": 1_733_461_289, "owned_by": "library"}
        ]})))
        .mount(&app.providers)
        .await;
}

fn key_body(app: &TestApp, name: &str) -> Value {
    json!({
        "provider": "openai_compatible", "name": "vLLM", "api_key": KEY,
        "base_url": format!("{}/", endpoint(app, name)),
        "extra_headers": {"X-Tenant": TENANT_SECRET},
        "custom_models": [CUSTOM_MODEL],
    })
}

async fn create_compatible_key(app: &TestApp, name: &str) -> Value {
    serve_endpoint_without_models(app, name).await;
    app.post(&app.llma("provider_keys/"), key_body(app, name)).await.expect(201).json()
}

#[tokio::test]
async fn a_key_of_an_endpoint_without_models_is_checked_by_a_completion_and_shown_masked() {
    let app = TestApp::spawn().await;

    let key = create_compatible_key(&app, "gw").await;

    assert_eq!(key["provider"], "openai_compatible");
    assert_eq!(key["state"], "ok");
    assert_eq!(key["base_url"], endpoint(&app, "gw"), "kept without the trailing slash");
    assert_eq!(key["extra_headers"], json!({"x-tenant": "tena...t-42"}));
    assert_eq!(key["custom_models"], json!([CUSTOM_MODEL]));
    assert_eq!(key["api_key_masked"], "loca...3456");
    let read = app.get(&app.llma(&format!("provider_keys/{}/", key["id"].as_str().unwrap()))).await.expect(200);
    for text in [key.to_string(), read.json().to_string(), app.logs()] {
        assert!(!text.contains(TENANT_SECRET) && !text.contains(KEY), "a secret leaked: {text:.300}");
    }
    let openai = app.create_openai_key("plain", "sk-test-plain-12345").await;
    assert!(openai.get("base_url").is_none(), "other providers' keys look as before: {openai}");

    let models = app
        .get(&app.llma(&format!("models/?provider=openai_compatible&key_id={}", key["id"].as_str().unwrap())))
        .await
        .expect(200)
        .json();
    assert_eq!(models["models"], json!([{"id": CUSTOM_MODEL, "posthog_available": false}]));
}

#[tokio::test]
async fn the_models_an_endpoint_lists_are_offered_for_its_key() {
    let app = TestApp::spawn().await;
    serve_endpoint_with_models(&app, "ollama").await;
    let mut body = key_body(&app, "ollama");
    body["extra_headers"] = json!(null);
    let key = app.post(&app.llma("provider_keys/"), body).await.expect(201).json();

    let models = app
        .get(&app.llma(&format!("models/?provider=openai_compatible&key_id={}", key["id"].as_str().unwrap())))
        .await
        .expect(200)
        .json();

    assert_eq!(models["models"], json!([{"id": "qwen2.5:7b", "posthog_available": false}]));
}

#[tokio::test]
async fn the_key_is_bound_to_its_endpoint() {
    let app = TestApp::spawn().await;
    let key = create_compatible_key(&app, "gw").await;
    let key_path = app.llma(&format!("provider_keys/{}/", key["id"].as_str().unwrap()));

    let moved = app.patch(&key_path, json!({"base_url": "https://attacker.example.net/v1"})).await.expect(400).json();
    assert_eq!(moved["attr"], "api_key");
    assert_eq!(moved["detail"], "Changing the endpoint requires the key again.");
    let replaced = app
        .put(
            &key_path,
            json!({"provider": "openai_compatible", "name": "vLLM", "base_url": endpoint(&app, "elsewhere")}),
        )
        .await
        .expect(400)
        .json();
    assert_eq!(replaced["attr"], "api_key");
    let unchanged = app.get(&key_path).await.expect(200).json();
    assert_eq!(unchanged["base_url"], endpoint(&app, "gw"));

    let same = app.patch(&key_path, json!({"base_url": format!("{}/", endpoint(&app, "gw")), "name": "vLLM 2"})).await;
    assert_eq!(same.expect(200).json()["state"], "ok", "naming the same endpoint is no move");

    serve_endpoint_with_models(&app, "gw2").await;
    let moved_with_key =
        app.patch(&key_path, json!({"base_url": endpoint(&app, "gw2"), "api_key": KEY})).await.expect(200).json();
    assert_eq!(moved_with_key["base_url"], endpoint(&app, "gw2"));
    assert_eq!(moved_with_key["extra_headers"], json!({"x-tenant": "tena...t-42"}), "the headers stay");

    let headers = app.patch(&key_path, json!({"extra_headers": {"x-route": "routing-value-99"}})).await.expect(200);
    let headers = headers.json();
    assert_eq!(headers["extra_headers"], json!({"x-route": "rout...e-99"}));
    assert_eq!(headers["state"], "unknown", "new headers are not checked yet");
    let models = app.patch(&key_path, json!({"custom_models": ["a", "b"]})).await.expect(200).json();
    assert_eq!((models["custom_models"].clone(), models["state"].clone()), (json!(["a", "b"]), json!("unknown")));

    let activity = app.get(&format!("{key_path}activity/")).await.expect(200).json();
    let text = activity.to_string();
    assert!(text.contains("\"field\":\"base_url\""), "{text}");
    assert!(!text.contains(TENANT_SECRET) && !text.contains("routing-value-99"), "{text}");
}

#[tokio::test]
async fn bad_endpoint_fields_are_named() {
    let app = TestApp::spawn().await;
    for (change, attr) in [
        (json!({"base_url": null}), "base_url"),
        (json!({"base_url": 42}), "base_url"),
        (json!({"base_url": ["https://gw.example.com/v1"]}), "base_url"),
        (json!({"base_url": "gw.example.com"}), "base_url"),
        (json!({"base_url": "https://user:pw@gw.example.com/v1"}), "base_url"),
        (json!({"extra_headers": {"Authorization": "Bearer other"}}), "extra_headers.Authorization"),
        (json!({"extra_headers": {"x-a": "line\nbreak"}}), "extra_headers.x-a"),
        (json!({"extra_headers": {"x-a": 1}}), "extra_headers.x-a"),
        (json!({"extra_headers": ["x-a"]}), "extra_headers"),
        (json!({"custom_models": "llama"}), "custom_models"),
        (json!({"custom_models": ["ok", " "]}), "custom_models[1]"),
    ] {
        let mut body = key_body(&app, "gw");
        for (field, value) in change.as_object().unwrap() {
            body[field] = value.clone();
        }
        let refused = app.post(&app.llma("provider_keys/"), body).await.expect(400).json();
        assert_eq!(refused["attr"], attr, "{change}: {refused}");
        assert_eq!(refused["type"], "validation_error");
    }
    assert!(fake::all_requests(&app.providers).await.is_empty(), "nothing was called");

    let check = app
        .post(
            &app.llma("provider_key_validations/"),
            json!({"provider": "openai_compatible", "api_key": KEY, "base_url": "ftp://gw.example.com"}),
        )
        .await
        .expect(200)
        .json();
    assert_eq!((check["state"].as_str(), check["error_field"].as_str()), (Some("invalid"), Some("base_url")));
}

#[tokio::test]
async fn an_evaluation_judges_on_an_endpoint_without_json_schema_through_json_mode() {
    let app = TestApp::spawn_with(&[("LLMA_JOB_RETRY_BASE_SECS", "0")]).await;
    let key = create_compatible_key(&app, "gw").await;
    let completions = "/gw/v1/chat/completions";
    Mock::given(method("POST"))
        .and(path(completions))
        .and(body_partial_json(json!({"response_format": {"type": "json_schema"}})))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"object": "error", "code": 400,
            "message": "response_format.type must be 'text' or 'json_object'"})))
        .mount(&app.providers)
        .await;
    let verdict = json!({"verdict": true, "reasoning": "Polite."});
    Mock::given(method("POST"))
        .and(path(completions))
        .and(header("x-tenant", TENANT_SECRET))
        .and(body_partial_json(json!({"model": CUSTOM_MODEL, "response_format": {"type": "json_object"}})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "cmpl-2", "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": verdict.to_string()}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 90, "completion_tokens": 14, "total_tokens": 104}
        })))
        .mount(&app.providers)
        .await;

    let without_key = json!({"name": "polite", "evaluation_type": "llm_judge",
        "evaluation_config": {"prompt": "Is the answer polite?"},
        "model_configuration": {"provider": "openai_compatible", "model": CUSTOM_MODEL}});
    let refused = app.post(&evaluations_path(&app), without_key).await.expect(400).json();
    assert_eq!(refused["attr"], "model_configuration.provider_key_id");

    let body = json!({"name": "polite", "evaluation_type": "llm_judge", "enabled": true,
        "evaluation_config": {"prompt": "Is the answer polite?"},
        "model_configuration": {"provider": "openai_compatible", "model": CUSTOM_MODEL, "provider_key_id": key["id"]}});
    app.post(&evaluations_path(&app), body).await.expect(201);
    send(&app, &[generation(json!({}))]).await;

    test_support::wait_until(DEADLINE, || async {
        let found: Option<(Value,)> =
            sqlx::query_as("SELECT properties FROM ai_events WHERE project_id = $1 AND event = '$ai_evaluation'")
                .bind(app.project)
                .fetch_optional(&app.db.pool)
                .await
                .unwrap();
        found.is_some_and(|(properties,)| properties["$ai_evaluation_result"] == json!(true))
    })
    .await;
    let calls: (String, i64) = sqlx::query_as(
        "SELECT provider, count(*) FROM llm_calls WHERE project_id = $1 AND purpose = 'judge' GROUP BY provider",
    )
    .bind(app.project)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(calls, ("openai_compatible".to_owned(), 1));
}

#[tokio::test]
async fn endpoints_inside_the_network_are_refused_unless_the_operator_allows_them() {
    let mut app = TestApp::spawn().await;
    let saved = create_compatible_key(&app, "gw").await;
    app.set_env("LLMA_ALLOW_PRIVATE_ENDPOINTS", "false");
    app.restart();
    app.providers.reset().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&app.providers)
        .await;

    for base_url in [
        "http://gw.example.com/v1",
        "https://127.0.0.1:8000/v1",
        "https://localhost:8000/v1",
        "https://10.0.0.5/v1",
        "https://169.254.169.254/latest",
        "https://[::1]/v1",
        "https://[fe80::1]/v1",
        "https://metadata.google.internal/v1",
    ] {
        let mut body = key_body(&app, "gw");
        body["base_url"] = json!(base_url);
        let refused = app.post(&app.llma("provider_keys/"), body).await.expect(400).json();
        assert_eq!(refused["attr"], "base_url", "{base_url}: {refused}");
    }

    // A key saved while they were allowed is refused when it would connect, never called.
    let key_path = app.llma(&format!("provider_keys/{}/", saved["id"].as_str().unwrap()));
    let validated = app.post(&format!("{key_path}validate/"), json!({})).await.expect(200).json();
    assert_eq!(validated["state"], "invalid", "{validated}");
    assert!(validated["error_message"].as_str().unwrap().contains("private, loopback"), "{validated}");
    assert!(fake::all_requests(&app.providers).await.is_empty());
}

#[tokio::test]
async fn a_summary_is_written_by_the_evaluations_endpoint() {
    let app = TestApp::spawn().await;
    let key = create_compatible_key(&app, "gw").await;
    let body = json!({"name": "polite", "evaluation_type": "llm_judge",
        "evaluation_config": {"prompt": "Is the answer polite?"},
        "model_configuration": {"provider": "openai_compatible", "model": CUSTOM_MODEL, "provider_key_id": key["id"]}});
    let evaluation = app.post(&evaluations_path(&app), body).await.expect(201).json();
    let evaluation_id = evaluation["id"].as_str().unwrap();
    let target = uuid::Uuid::now_v7().to_string();
    let run = crate::ingestion::sdk_event(
        "$ai_evaluation",
        json!({"$ai_evaluation_id": evaluation_id, "$ai_target_event_id": target,
               "$ai_evaluation_result": true, "$ai_evaluation_reasoning": "Kind words."}),
    );
    crate::ingestion::capture(&app, "/batch/", &json!({"api_key": app.project_token, "batch": [run]}))
        .await
        .expect(200);
    let summary = json!({
        "overall_assessment": "Polite throughout.",
        "pass_patterns": [{"title": "Kind", "description": "Kind words", "frequency": "common",
                           "example_generation_ids": [target]}],
        "fail_patterns": [], "na_patterns": [], "recommendations": ["Keep it up", "Say thanks"]
    });
    Mock::given(method("POST"))
        .and(path("/gw/v1/chat/completions"))
        .and(header("x-tenant", TENANT_SECRET))
        .and(body_partial_json(json!({"model": CUSTOM_MODEL})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "cmpl-3", "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": summary.to_string()}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 300, "completion_tokens": 40, "total_tokens": 340}
        })))
        .mount(&app.providers)
        .await;

    let answered = app.post(&app.llma("evaluation_summary/"), json!({"evaluation_id": evaluation_id})).await;

    assert_eq!(answered.expect(200).json()["overall_assessment"], "Polite throughout.");
    let (provider, purpose): (String, String) =
        sqlx::query_as("SELECT provider, purpose FROM llm_calls WHERE project_id = $1 AND outcome = 'ok'")
            .bind(app.project)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!((provider.as_str(), purpose.as_str()), ("openai_compatible", "summary"));
    let used = app.get(&app.llma(&format!("provider_keys/{}/", key["id"].as_str().unwrap()))).await.expect(200);
    assert!(used.json()["last_used_at"].is_string(), "the key is marked used");
}
