//! Spec section 2: checking a key live without storing it.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

const ALL_PROVIDERS: [&str; 7] =
    ["openai", "anthropic", "gemini", "azure_openai", "fireworks", "openrouter", "together_ai"];

fn check_path(app: &TestApp) -> String {
    app.llma("provider_key_validations/")
}

/// A check body for `provider` with a key of the right format (azure: the fake endpoint).
fn check_body(app: &TestApp, provider: &str) -> Value {
    let api_key = match provider {
        "anthropic" => "sk-ant-test-12345",
        _ => "sk-test-check-12345",
    };
    let mut body = json!({"provider": provider, "api_key": api_key});
    if provider == "azure_openai" {
        body["azure_endpoint"] = json!(format!("{}/azure", app.providers.uri()));
    }
    body
}

async fn check(app: &TestApp, body: Value) -> Value {
    app.post(&check_path(app), body).await.expect(200).json()
}

async fn stored_keys(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM provider_keys").fetch_one(&app.db.pool).await.unwrap()
}

#[tokio::test]
async fn a_missing_or_blank_api_key_is_400() {
    let app = TestApp::spawn().await;
    fake::accept_models(&app.providers, "openai").await;
    for body in [json!({}), json!({"provider": "openai"}), json!({"api_key": ""}), json!({"api_key": "   "})] {
        let error = app.post(&check_path(&app), body.clone()).await.expect(400).json();
        assert_eq!(error["detail"], "API key is required.", "{body}");
        assert_eq!(error["attr"], "api_key", "{body}");
    }
    assert!(fake::all_requests(&app.providers).await.is_empty());
}

#[tokio::test]
async fn an_unknown_provider_is_400_listing_the_providers() {
    let app = TestApp::spawn().await;
    let error = app
        .post(&check_path(&app), json!({"provider": "mistral", "api_key": "sk-test-12345678"}))
        .await
        .expect(400)
        .json();
    assert_eq!(
        error["detail"],
        "Invalid provider. Must be one of: openai, anthropic, gemini, azure_openai, fireworks, openrouter, together_ai, openai_compatible"
    );
    assert_eq!(error["attr"], "provider");
    assert!(fake::all_requests(&app.providers).await.is_empty());
}

#[tokio::test]
async fn the_provider_defaults_to_openai() {
    let app = TestApp::spawn().await;
    fake::accept_models(&app.providers, "openai").await;
    let result = check(&app, json!({"api_key": "sk-test-default-12345"})).await;
    assert_eq!(result["state"], "ok");
    let requests = fake::requests_to(&app.providers, &fake::check_path("openai")).await;
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].headers.get("authorization").unwrap(), "Bearer sk-test-default-12345");
}

#[tokio::test]
async fn a_key_the_provider_accepts_is_ok() {
    let app = TestApp::spawn().await;
    for provider in ALL_PROVIDERS {
        fake::accept_models(&app.providers, provider).await;
        let result = check(&app, check_body(&app, provider)).await;
        assert_eq!(result, json!({"state": "ok", "error_message": null, "error_field": null}), "{provider}");
        assert_eq!(fake::requests_to(&app.providers, &fake::check_path(provider)).await.len(), 1, "{provider}");
    }
}

#[tokio::test]
async fn a_key_the_provider_rejects_with_401_or_403_is_invalid() {
    let app = TestApp::spawn().await;
    for status in [401, 403] {
        app.providers.reset().await;
        for provider in ALL_PROVIDERS {
            fake::answer_status(&app.providers, provider, status).await;
            let result = check(&app, check_body(&app, provider)).await;
            assert_eq!(result["state"], "invalid", "{provider} {status}");
            assert_eq!(result["error_message"], "Invalid API key", "{provider} {status}");
            let field = if provider == "azure_openai" { json!("api_key") } else { Value::Null };
            assert_eq!(result["error_field"], field, "{provider} {status}");
        }
    }
}

#[tokio::test]
async fn a_rate_limited_check_is_an_error() {
    let app = TestApp::spawn().await;
    for provider in ALL_PROVIDERS {
        fake::answer_status(&app.providers, provider, 429).await;
        let result = check(&app, check_body(&app, provider)).await;
        assert_eq!(
            result,
            json!({"state": "error", "error_message": "Rate limited, please try again later", "error_field": null}),
            "{provider}"
        );
    }
}

#[tokio::test]
async fn gemini_answering_400_api_key_invalid_is_invalid() {
    let app = TestApp::spawn().await;
    fake::answer_json(&app.providers, &fake::check_path("gemini"), 400, fake::gemini_bad_key_body()).await;
    let result = check(&app, json!({"provider": "gemini", "api_key": "AIza-bad-key-12345"})).await;
    assert_eq!(result["state"], "invalid");
    assert_eq!(result["error_message"], "Invalid API key");
    let requests = fake::requests_to(&app.providers, &fake::check_path("gemini")).await;
    assert_eq!(requests[0].headers.get("x-goog-api-key").unwrap(), "AIza-bad-key-12345");
    assert!(!requests[0].url.as_str().contains("AIza-bad-key-12345"), "the key is in the URL");
}

#[tokio::test]
async fn an_azure_endpoint_that_answers_404_blames_the_endpoint() {
    let app = TestApp::spawn().await;
    fake::answer_status(&app.providers, "azure_openai", 404).await;
    let result = check(&app, check_body(&app, "azure_openai")).await;
    assert_eq!(
        result,
        json!({"state": "invalid", "error_message": "Azure endpoint not found — check the URL",
               "error_field": "azure_endpoint"})
    );
}

#[tokio::test]
async fn an_unreachable_provider_is_an_error_naming_it() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let closed = format!("http://127.0.0.1:{port}/v1");
    let app = TestApp::spawn_with(&[("LLMA_OPENAI_BASE_URL", &closed)]).await;
    let result = check(&app, json!({"provider": "openai", "api_key": "sk-test-unreachable-12345"})).await;
    assert_eq!(result, json!({"state": "error", "error_message": "Could not connect to OpenAI", "error_field": null}));
}

#[tokio::test]
async fn a_key_in_the_wrong_format_is_invalid_without_a_provider_call() {
    let app = TestApp::spawn().await;
    fake::accept_models(&app.providers, "openai").await;
    fake::accept_models(&app.providers, "anthropic").await;
    for (provider, api_key, prefix) in
        [("openai", "pk-test-12345678", "'sk-'"), ("anthropic", "sk-test-12345678", "'sk-ant-'")]
    {
        let result = check(&app, json!({"provider": provider, "api_key": api_key})).await;
        assert_eq!(result["state"], "invalid", "{provider}");
        assert!(result["error_message"].as_str().unwrap().contains(prefix), "{provider}: {result}");
    }
    assert!(fake::all_requests(&app.providers).await.is_empty());
}

#[tokio::test]
async fn checking_a_key_stores_nothing() {
    let app = TestApp::spawn().await;
    for provider in ALL_PROVIDERS {
        fake::accept_models(&app.providers, provider).await;
        check(&app, check_body(&app, provider)).await;
    }
    assert_eq!(stored_keys(&app).await, 0);
    assert_eq!(app.get(&app.llma("provider_keys/")).await.expect(200).json()["count"], 0);
}

#[tokio::test]
async fn checking_a_key_needs_the_provider_key_write_scope() {
    let app = TestApp::spawn().await;
    fake::accept_models(&app.providers, "openai").await;
    let body = json!({"provider": "openai", "api_key": "sk-test-scoped-12345"});
    let reader = app.user_with_key("reader@example.com", Some((app.project, "admin")), "llm_provider_key:read", None);
    let error =
        app.request(Method::POST, &check_path(&app), Some(&reader), Some(body.clone())).await.expect(403).json();
    assert!(error["detail"].as_str().unwrap().contains("llm_provider_key:write"), "{error}");
    assert!(fake::all_requests(&app.providers).await.is_empty());
    let writer = app.user_with_key("writer@example.com", Some((app.project, "admin")), "llm_provider_key:write", None);
    let result = app.request(Method::POST, &check_path(&app), Some(&writer), Some(body)).await.expect(200).json();
    assert_eq!(result["state"], "ok");
}

#[tokio::test]
async fn provider_specific_failures_say_what_is_wrong() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            "openai",
            429,
            json!({"error": {"message": "You exceeded your current quota", "type": "insufficient_quota",
                             "code": "insufficient_quota"}}),
            "The key is valid but has no quota left",
        ),
        (
            "openai",
            401,
            json!({"error": {"message": "You have insufficient permissions for this operation. Missing scopes: api.model.read."}}),
            "The key lacks the Models:Read permission",
        ),
        (
            "openrouter",
            402,
            json!({"error": {"code": 402, "message": "Insufficient credits"}}),
            "The key is valid but has no credit left",
        ),
        (
            "anthropic",
            529,
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
            "Anthropic is overloaded, try again later",
        ),
        ("openrouter", 500, json!({"error": "boom"}), "Unexpected response status: 500"),
        ("together_ai", 503, json!({"error": "boom"}), "Unexpected response status: 503"),
        ("openai", 500, json!({"error": "boom"}), "Validation failed, please try again"),
    ];
    for (provider, status, body, message) in cases {
        app.providers.reset().await;
        fake::answer_json(&app.providers, &fake::check_path(provider), status, body).await;
        let result = check(&app, check_body(&app, provider)).await;
        assert_eq!(
            result,
            json!({"state": "error", "error_message": message, "error_field": null}),
            "{provider} {status}"
        );
    }
}

#[tokio::test]
async fn a_non_json_answer_is_an_error_that_names_the_provider_and_never_echoes_the_body() {
    let app = TestApp::spawn().await;
    for provider in ["openai", "azure_openai"] {
        Mock::given(method("GET"))
            .and(path(fake::check_path(provider)))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("content-type", "text/html")
                    .set_body_string("<html><body>Welcome to nginx secret-page-marker</body></html>"),
            )
            .mount(&app.providers)
            .await;
    }
    let reply = app.post(&check_path(&app), check_body(&app, "openai")).await.expect(200);
    assert!(!reply.text.contains("secret-page-marker"), "the body is echoed: {}", reply.text);
    assert_eq!(
        reply.json(),
        json!({"state": "error", "error_message": "Unexpected response from OpenAI — check the endpoint",
               "error_field": null})
    );
    let azure = check(&app, check_body(&app, "azure_openai")).await;
    assert_eq!(azure["state"], "error");
    assert_eq!(azure["error_message"], "Unexpected response from Azure OpenAI — check the endpoint");
    assert_eq!(azure["error_field"], "azure_endpoint");
}

#[tokio::test]
async fn an_azure_check_without_an_endpoint_blames_the_endpoint() {
    let app = TestApp::spawn().await;
    let result = check(&app, json!({"provider": "azure_openai", "api_key": "azure-test-key-12345"})).await;
    assert_eq!(result["state"], "invalid");
    assert_eq!(result["error_field"], "azure_endpoint");
    assert!(fake::all_requests(&app.providers).await.is_empty());
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let app = TestApp::spawn().await;
    let elsewhere = format!("{}/elsewhere/models", app.providers.uri());
    Mock::given(method("GET"))
        .and(path(fake::check_path("openai")))
        .respond_with(ResponseTemplate::new(302).insert_header("location", elsewhere.as_str()))
        .mount(&app.providers)
        .await;
    fake::answer_json(&app.providers, "/elsewhere/models", 200, fake::ok_body("openai")).await;
    let result = check(&app, json!({"provider": "openai", "api_key": "sk-test-redirect-12345"})).await;
    assert_ne!(result["state"], "ok", "{result}");
    assert!(fake::requests_to(&app.providers, "/elsewhere/models").await.is_empty(), "the redirect was followed");
}

#[tokio::test]
async fn a_provider_that_does_not_answer_in_time_is_an_error() {
    let app = TestApp::spawn().await;
    Mock::given(method("GET"))
        .and(path(fake::check_path("openai")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(fake::ok_body("openai")).set_delay(Duration::from_secs(60)),
        )
        .mount(&app.providers)
        .await;
    let started = Instant::now();
    let result = check(&app, json!({"provider": "openai", "api_key": "sk-test-slow-12345"})).await;
    assert!(started.elapsed() < Duration::from_secs(25), "the check took {:?}", started.elapsed());
    assert_eq!(
        result,
        json!({"state": "error", "error_message": "Request timed out, please try again", "error_field": null})
    );
}
