//! Spec section 3: the models a provider (and a key) offers.

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;

const ALL_PROVIDERS: [&str; 7] =
    ["openai", "anthropic", "gemini", "azure_openai", "fireworks", "openrouter", "together_ai"];

fn models_path(app: &TestApp, provider: &str, key_id: Option<&str>) -> String {
    match key_id {
        Some(key_id) => app.llma(&format!("models/?provider={provider}&key_id={key_id}")),
        None => app.llma(&format!("models/?provider={provider}")),
    }
}

async fn models(app: &TestApp, provider: &str, key_id: Option<&str>) -> Value {
    app.get(&models_path(app, provider, key_id)).await.expect(200).json()
}

fn ids(models: &Value) -> Vec<String> {
    models["models"]
        .as_array()
        .unwrap_or_else(|| panic!("no models list: {models}"))
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

fn available(models: &Value) -> Vec<(String, bool)> {
    models["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["id"].as_str().unwrap().to_owned(), m["posthog_available"].as_bool().unwrap()))
        .collect()
}

fn api_key_for(provider: &str) -> &'static str {
    match provider {
        "anthropic" => "sk-ant-test-12345",
        _ => "sk-test-models-12345",
    }
}

/// Stores a key of `provider` (the fake accepts it), then forgets the fake's mocks and
/// recorded requests; returns the key's id.
async fn create_key(app: &TestApp, provider: &str) -> String {
    create_key_at(app, provider, &format!("{}/azure", app.providers.uri())).await
}

async fn create_key_at(app: &TestApp, provider: &str, azure_endpoint: &str) -> String {
    fake::accept_models(&app.providers, provider).await;
    let mut body = json!({"provider": provider, "name": format!("{provider} key"), "api_key": api_key_for(provider)});
    if provider == "azure_openai" {
        body["azure_endpoint"] = json!(azure_endpoint);
    }
    let key = app.post(&app.llma("provider_keys/"), body).await.expect(201).json();
    app.providers.reset().await;
    key["id"].as_str().unwrap().to_owned()
}

/// Stores a key of `provider`, has the fake answer its model list with `answer`, and
/// returns the key's id and the list the service answers for it.
async fn live_models(app: &TestApp, provider: &str, answer: Value) -> (String, Value) {
    let key = create_key(app, provider).await;
    fake::serve_models(&app.providers, provider, answer).await;
    let list = models(app, provider, Some(&key)).await;
    (key, list)
}

async fn list_calls(app: &TestApp, provider: &str) -> usize {
    fake::requests_to(&app.providers, &fake::models_path(provider)).await.len()
}

#[tokio::test]
async fn a_missing_provider_is_400() {
    let app = TestApp::spawn().await;
    for path in [app.llma("models/"), app.llma("models/?provider="), app.llma("models/?provider=%20")] {
        let error = app.get(&path).await.expect(400).json();
        assert_eq!(error["detail"], "provider query param is required", "{path}");
    }
}

#[tokio::test]
async fn an_unknown_provider_is_400_listing_the_providers() {
    let app = TestApp::spawn().await;
    let error = app.get(&models_path(&app, "mistral", None)).await.expect(400).json();
    let detail = error["detail"].as_str().unwrap();
    assert!(detail.starts_with("Invalid provider. Must be one of:"), "{detail}");
    for provider in ALL_PROVIDERS {
        assert!(detail.contains(provider), "{detail} lacks {provider}");
    }
}

#[tokio::test]
async fn a_key_the_project_does_not_have_is_404_key_not_found() {
    let app = TestApp::spawn().await;
    let foreign = crate::evaluations::key_of_another_project(&app).await;
    app.providers.reset().await;
    let unknown = Uuid::new_v4().to_string();
    for key_id in [foreign["id"].as_str().unwrap(), unknown.as_str(), "garbage"] {
        let error = app.get(&models_path(&app, "openai", Some(key_id))).await.expect(404).json();
        assert_eq!(error["detail"], "Key not found", "{key_id}");
    }
    assert!(fake::all_requests(&app.providers).await.is_empty(), "a foreign key was used");
}

#[tokio::test]
async fn a_key_of_another_provider_is_400() {
    let app = TestApp::spawn().await;
    let key = create_key(&app, "anthropic").await;
    let error = app.get(&models_path(&app, "openai", Some(&key))).await.expect(400).json();
    assert_eq!(error["detail"], "Key provider 'anthropic' does not match requested provider 'openai'");
    assert!(fake::all_requests(&app.providers).await.is_empty());
}

#[tokio::test]
async fn without_a_key_the_curated_list_is_answered_and_nothing_is_on_trial_without_a_system_llm() {
    let app = TestApp::spawn().await;
    let openai = models(&app, "openai", None).await;
    assert_eq!(ids(&openai)[0], "gpt-5-mini");
    assert!(ids(&openai).contains(&"gpt-4o".to_owned()), "{openai}");
    assert_eq!(ids(&models(&app, "anthropic", None).await)[0], "claude-haiku-4-5");
    assert_eq!(ids(&models(&app, "google", None).await)[0], "gemini-2.5-flash");
    for provider in ALL_PROVIDERS {
        let list = models(&app, provider, None).await;
        assert!(available(&list).iter().all(|(_, on_trial)| !on_trial), "{provider}: {list}");
    }
    assert!(fake::all_requests(&app.providers).await.is_empty(), "the curated list needs no provider");
}

#[tokio::test]
async fn the_trial_model_is_posthog_available_when_a_system_llm_is_configured() {
    let app = TestApp::spawn_with(&[
        ("LLMA_SYSTEM_LLM_PROVIDER", "openai"),
        ("LLMA_SYSTEM_LLM_API_KEY", "sk-system-123456"),
        ("LLMA_TRIAL_MODELS", "gpt-5-mini"),
    ])
    .await;
    let openai = available(&models(&app, "openai", None).await);
    assert_eq!(openai[0], ("gpt-5-mini".to_owned(), true));
    assert!(openai[1..].iter().all(|(_, on_trial)| !on_trial), "{openai:?}");
    let anthropic = available(&models(&app, "anthropic", None).await);
    assert!(!anthropic.is_empty() && anthropic.iter().all(|(_, on_trial)| !on_trial), "{anthropic:?}");
    // the live list of a key marks it too
    let key = create_key(&app, "openai").await;
    fake::serve_models(
        &app.providers,
        "openai",
        json!({"object": "list", "data": [{"id": "gpt-4o", "created": 1}, {"id": "gpt-5-mini", "created": 2}]}),
    )
    .await;
    let live = available(&models(&app, "openai", Some(&key)).await);
    assert_eq!(live, vec![("gpt-5-mini".to_owned(), true), ("gpt-4o".to_owned(), false)]);
}

#[tokio::test]
async fn with_a_key_curated_models_it_offers_come_first_then_the_rest_newest_first() {
    let app = TestApp::spawn().await;
    let (_, list) = live_models(
        &app,
        "openai",
        json!({"object": "list", "data": [
            {"id": "gpt-4o", "object": "model", "created": 1715367049},
            {"id": "ft:gpt-4o-mini:acme::abc", "object": "model", "created": 1730000000},
            {"id": "whisper-1", "object": "model", "created": 1677532384},
            {"id": "gpt-5-mini", "object": "model", "created": 1754000000},
            {"id": "dall-e-3", "object": "model", "created": 1698785189},
            {"id": "babbage-002", "object": "model", "created": 1692634615}
        ]}),
    )
    .await;
    assert_eq!(
        ids(&list),
        ["gpt-5-mini", "gpt-4o", "ft:gpt-4o-mini:acme::abc", "dall-e-3", "babbage-002", "whisper-1"]
    );
    assert!(available(&list).iter().all(|(_, on_trial)| !on_trial));
    let requests = fake::requests_to(&app.providers, &fake::models_path("openai")).await;
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].headers.get("authorization").unwrap(), "Bearer sk-test-models-12345");
}

#[tokio::test]
async fn anthropic_models_are_ordered_by_their_creation_date() {
    let app = TestApp::spawn().await;
    let (_, list) = live_models(
        &app,
        "anthropic",
        json!({"data": [
            {"type": "model", "id": "claude-3-haiku-20240307", "created_at": "2024-03-07T00:00:00Z"},
            {"type": "model", "id": "claude-sonnet-4-5", "created_at": "2025-09-29T00:00:00Z"},
            {"type": "model", "id": "claude-3-7-sonnet-20250219", "created_at": "2025-02-19T00:00:00Z"},
            {"type": "model", "id": "claude-haiku-4-5", "created_at": "2025-10-01T00:00:00Z"}
        ], "has_more": false, "first_id": "claude-3-haiku-20240307", "last_id": "claude-haiku-4-5"}),
    )
    .await;
    assert_eq!(
        ids(&list),
        ["claude-haiku-4-5", "claude-sonnet-4-5", "claude-3-7-sonnet-20250219", "claude-3-haiku-20240307"]
    );
    let requests = fake::requests_to(&app.providers, &fake::models_path("anthropic")).await;
    assert_eq!(requests[0].headers.get("x-api-key").unwrap(), "sk-ant-test-12345");
}

#[tokio::test]
async fn gemini_model_ids_lose_their_models_prefix() {
    let app = TestApp::spawn().await;
    let (_, list) = live_models(
        &app,
        "gemini",
        json!({"models": [
            {"name": "models/text-embedding-004", "displayName": "Text Embedding 004"},
            {"name": "models/gemini-2.5-pro", "displayName": "Gemini 2.5 Pro"},
            {"name": "models/gemini-2.5-flash", "displayName": "Gemini 2.5 Flash"}
        ]}),
    )
    .await;
    assert_eq!(ids(&list), ["gemini-2.5-flash", "gemini-2.5-pro", "text-embedding-004"]);
    let requests = fake::requests_to(&app.providers, &fake::models_path("gemini")).await;
    assert_eq!(requests[0].headers.get("x-goog-api-key").unwrap(), "sk-test-models-12345");
    assert!(!requests[0].url.as_str().contains("sk-test-models-12345"), "the key is in the URL");
}

#[tokio::test]
async fn together_answers_a_bare_array() {
    let app = TestApp::spawn().await;
    let (key, list) = live_models(
        &app,
        "together_ai",
        json!([
            {"id": "meta-llama/Llama-3.3-70B-Instruct-Turbo", "object": "model", "created": 1733443200},
            {"id": "Qwen/Qwen2.5-72B-Instruct-Turbo", "object": "model", "created": 1740000000}
        ]),
    )
    .await;
    assert_eq!(models(&app, "together", Some(&key)).await, list, "the alias lists the same");
    assert_eq!(ids(&list), ["Qwen/Qwen2.5-72B-Instruct-Turbo", "meta-llama/Llama-3.3-70B-Instruct-Turbo"]);
}

#[tokio::test]
async fn fireworks_model_ids_are_kept_whole() {
    let app = TestApp::spawn().await;
    let (_, list) = live_models(
        &app,
        "fireworks",
        json!({"object": "list", "data": [
            {"id": "accounts/fireworks/models/llama-v3p3-70b-instruct", "object": "model", "created": 1733443200},
            {"id": "accounts/fireworks/models/qwen3-235b-a22b", "object": "model", "created": 1745000000}
        ]}),
    )
    .await;
    assert_eq!(
        ids(&list),
        ["accounts/fireworks/models/qwen3-235b-a22b", "accounts/fireworks/models/llama-v3p3-70b-instruct"]
    );
}

#[tokio::test]
async fn openrouter_lists_its_models_with_the_key() {
    let app = TestApp::spawn().await;
    let (_, list) = live_models(
        &app,
        "openrouter",
        json!({"data": [
            {"id": "openai/gpt-5-mini", "created": 1754000000},
            {"id": "anthropic/claude-haiku-4.5", "created": 1760000000}
        ]}),
    )
    .await;
    assert_eq!(ids(&list), ["anthropic/claude-haiku-4.5", "openai/gpt-5-mini"]);
}

#[tokio::test]
async fn azure_lists_the_deployments_of_the_keys_own_endpoint() {
    let app = TestApp::spawn().await;
    let resource = MockServer::start().await;
    fake::answer_json(&resource, "/openai/models", 200, fake::ok_body("azure_openai")).await;
    fake::answer_json(
        &resource,
        "/openai/deployments",
        200,
        json!({"data": [{"id": "my-gpt", "model": "gpt-4o", "created_at": 1700000000}]}),
    )
    .await;
    let key = create_key_at(&app, "azure_openai", &resource.uri()).await;
    let list = models(&app, "azure_openai", Some(&key)).await;
    assert_eq!(list, json!({"models": [{"id": "my-gpt", "posthog_available": false}]}));
    let requests = fake::requests_to(&resource, "/openai/deployments").await;
    assert_eq!(requests.len(), 1);
    let version = requests[0].url.query_pairs().find(|(k, _)| k == "api-version").map(|(_, v)| v.into_owned());
    assert_eq!(version.as_deref(), Some("2023-03-15-preview"));
    assert_eq!(requests[0].headers.get("api-key").unwrap(), "sk-test-models-12345");
    assert!(fake::all_requests(&app.providers).await.is_empty(), "the list went elsewhere than the key's endpoint");
}

#[tokio::test]
async fn azure_falls_back_to_the_model_list_when_deployments_are_not_listed() {
    let app = TestApp::spawn().await;
    let key = create_key(&app, "azure_openai").await;
    fake::answer_json(&app.providers, "/azure/openai/deployments", 404, json!({"error": {"code": "404"}})).await;
    fake::answer_json(
        &app.providers,
        "/azure/openai/models",
        200,
        json!({"data": [{"id": "gpt-4o-2024-08-06", "created_at": 1722988800}]}),
    )
    .await;
    let list = models(&app, "azure_openai", Some(&key)).await;
    assert_eq!(ids(&list), ["gpt-4o-2024-08-06"]);
}

#[tokio::test]
async fn when_the_provider_fails_the_curated_list_or_nothing_is_answered() {
    let app = TestApp::spawn().await;
    // an outage, and a key the provider no longer accepts
    for status in [500, 401] {
        for provider in ALL_PROVIDERS {
            let key = create_key(&app, provider).await;
            fake::answer_json(&app.providers, &fake::models_path(provider), status, json!({"error": "boom"})).await;
            let live = models(&app, provider, Some(&key)).await;
            assert_eq!(list_calls(&app, provider).await, 1, "{provider} {status}: the provider was asked");
            match provider {
                "openai" | "anthropic" | "gemini" => {
                    let curated = models(&app, provider, None).await;
                    assert!(!ids(&curated).is_empty());
                    assert_eq!(live, curated, "{provider} {status}");
                }
                _ => assert_eq!(live, json!({"models": []}), "{provider} {status}"),
            }
        }
    }
}

#[tokio::test]
async fn a_live_list_is_cached_for_a_minute() {
    let app = TestApp::spawn().await;
    let key = create_key(&app, "openai").await;
    fake::serve_models(&app.providers, "openai", fake::ok_body("openai")).await;
    let first = models(&app, "openai", Some(&key)).await;
    let second = models(&app, "openai", Some(&key)).await;
    assert_eq!(first, second);
    assert_eq!(list_calls(&app, "openai").await, 1, "the second call within 60 s asked the provider again");
}

#[tokio::test]
async fn renaming_a_key_drops_its_cached_list() {
    let app = TestApp::spawn().await;
    let key = create_key(&app, "openai").await;
    fake::serve_models(&app.providers, "openai", fake::ok_body("openai")).await;
    models(&app, "openai", Some(&key)).await;
    assert_eq!(list_calls(&app, "openai").await, 1);
    app.patch(&app.llma(&format!("provider_keys/{key}/")), json!({"name": "renamed"})).await.expect(200);
    models(&app, "openai", Some(&key)).await;
    assert_eq!(list_calls(&app, "openai").await, 2, "the list of a changed key was served from the cache");
    models(&app, "openai", Some(&key)).await;
    assert_eq!(list_calls(&app, "openai").await, 2, "the fresh list is cached again");
}

#[tokio::test]
async fn replacing_the_secret_of_a_key_drops_its_cached_list() {
    let app = TestApp::spawn().await;
    let key = create_key(&app, "openai").await;
    fake::serve_models(&app.providers, "openai", json!({"object": "list", "data": [{"id": "gpt-4o", "created": 1}]}))
        .await;
    assert_eq!(ids(&models(&app, "openai", Some(&key)).await), ["gpt-4o"]);
    // the new key sees other models (openai checks keys on the same path as the list)
    app.providers.reset().await;
    fake::serve_models(
        &app.providers,
        "openai",
        json!({"object": "list", "data": [{"id": "gpt-5-mini", "created": 2}, {"id": "gpt-4o", "created": 1}]}),
    )
    .await;
    app.patch(&app.llma(&format!("provider_keys/{key}/")), json!({"api_key": "sk-test-rotated-99999"}))
        .await
        .expect(200);
    assert_eq!(list_calls(&app, "openai").await, 1, "the new key was checked");
    assert_eq!(ids(&models(&app, "openai", Some(&key)).await), ["gpt-5-mini", "gpt-4o"]);
    let requests = fake::requests_to(&app.providers, &fake::models_path("openai")).await;
    assert_eq!(requests.len(), 2, "the list of a changed key was served from the cache");
    assert_eq!(requests[1].headers.get("authorization").unwrap(), "Bearer sk-test-rotated-99999");
}

#[tokio::test]
async fn listing_models_needs_the_evaluation_read_scope() {
    let app = TestApp::spawn().await;
    let path = models_path(&app, "openai", None);
    let other_scope =
        app.user_with_key("keys@example.com", Some((app.project, "admin")), "llm_provider_key:write", None);
    let error = app.request(Method::GET, &path, Some(&other_scope), None).await.expect(403).json();
    assert!(error["detail"].as_str().unwrap().contains("evaluation:read"), "{error}");
    for (email, scope) in [("reader@example.com", "evaluation:read"), ("writer@example.com", "evaluation:write")] {
        let key = app.user_with_key(email, Some((app.project, "member")), scope, None);
        app.request(Method::GET, &path, Some(&key), None).await.expect(200);
    }
}

#[tokio::test]
async fn nothing_is_posthog_available_once_the_trial_credits_are_used_up() {
    let app = TestApp::spawn_with(&[
        ("LLMA_SYSTEM_LLM_PROVIDER", "openai"),
        ("LLMA_SYSTEM_LLM_API_KEY", "sk-system-123456"),
        ("LLMA_TRIAL_MODELS", "gpt-5-mini"),
    ])
    .await;
    sqlx::query("INSERT INTO evaluation_configs (project_id, trial_eval_limit, trial_evals_used) VALUES ($1, 5, 5)")
        .bind(app.project)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let openai = available(&models(&app, "openai", None).await);
    assert!(openai.contains(&("gpt-5-mini".to_owned(), false)), "{openai:?}");
    assert!(openai.iter().all(|(_, on_trial)| !on_trial), "{openai:?}");
}

#[tokio::test]
async fn every_page_of_a_paginated_anthropic_list_is_read() {
    let app = TestApp::spawn().await;
    let key = create_key(&app, "anthropic").await;
    let models_path_ = fake::models_path("anthropic");
    Mock::given(method("GET"))
        .and(path(models_path_.as_str()))
        .and(query_param("after_id", "claude-3-haiku-20240307"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [
            {"type": "model", "id": "claude-haiku-4-5", "created_at": "2025-10-01T00:00:00Z"}
        ], "has_more": false, "last_id": "claude-haiku-4-5"})))
        .mount(&app.providers)
        .await;
    Mock::given(method("GET"))
        .and(path(models_path_.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [
            {"type": "model", "id": "claude-3-haiku-20240307", "created_at": "2024-03-07T00:00:00Z"}
        ], "has_more": true, "last_id": "claude-3-haiku-20240307"})))
        .mount(&app.providers)
        .await;
    let list = models(&app, "anthropic", Some(&key)).await;
    assert_eq!(ids(&list), ["claude-haiku-4-5", "claude-3-haiku-20240307"]);
}

#[tokio::test]
async fn a_model_listed_twice_appears_once() {
    let app = TestApp::spawn().await;
    let (_, list) = live_models(
        &app,
        "openai",
        json!({"object": "list", "data": [
            {"id": "ft:custom-a", "created": 300},
            {"id": "ft:custom-b", "created": 200},
            {"id": "ft:custom-a", "created": 100},
            {"id": "gpt-4o", "created": 50},
            {"id": "gpt-4o", "created": 40}
        ]}),
    )
    .await;
    assert_eq!(ids(&list), ["gpt-4o", "ft:custom-a", "ft:custom-b"]);
}

#[tokio::test]
async fn azure_models_follow_a_changed_endpoint() {
    let app = TestApp::spawn().await;
    let key = create_key(&app, "azure_openai").await;
    fake::answer_json(&app.providers, "/azure/openai/deployments", 200, json!({"data": [{"id": "old-gpt"}]})).await;
    fake::answer_json(&app.providers, "/azure-moved/openai/deployments", 200, json!({"data": [{"id": "new-gpt"}]}))
        .await;
    assert_eq!(ids(&models(&app, "azure_openai", Some(&key)).await), ["old-gpt"]);
    let moved = format!("{}/azure-moved", app.providers.uri());
    app.patch(&app.llma(&format!("provider_keys/{key}/")), json!({"azure_endpoint": moved})).await.expect(200);
    assert_eq!(ids(&models(&app, "azure_openai", Some(&key)).await), ["new-gpt"]);
    let requests = fake::requests_to(&app.providers, "/azure-moved/openai/deployments").await;
    assert_eq!(requests[0].headers.get("api-key").unwrap(), "sk-test-models-12345");
}
