//! Spec section 1: provider keys — create, read, update, delete, validate.

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

/// Every provider with a key the fake accepts, its mask, and the header that carries it.
const PROVIDERS: [(&str, &str, &str, &str); 7] = [
    ("openai", "sk-test-openai-12345", "sk-t...2345", "authorization"),
    ("anthropic", "sk-ant-test-12345", "sk-a...2345", "x-api-key"),
    ("gemini", "AIzaSy-test-gemini-12345", "AIza...2345", "x-goog-api-key"),
    ("azure_openai", "azure-test-key-12345", "azur...2345", "api-key"),
    ("fireworks", "fw_test_fireworks_12345", "fw_t...2345", "authorization"),
    ("openrouter", "sk-or-v1-test-12345", "sk-o...2345", "authorization"),
    ("together_ai", "tgp_v1_test_12345", "tgp_...2345", "authorization"),
];

fn azure_endpoint(app: &TestApp) -> String {
    format!("{}/azure", app.providers.uri())
}

/// A create body for `provider` (azure: with the fake's endpoint).
fn key_body(app: &TestApp, provider: &str, name: &str, api_key: &str) -> Value {
    let mut body = json!({"provider": provider, "name": name, "api_key": api_key});
    if provider == "azure_openai" || provider == "azure" {
        body["azure_endpoint"] = json!(azure_endpoint(app));
    }
    body
}

/// A fresh service holding one OpenAI key the fake accepted; the fake then forgets it.
async fn app_with_openai_key(api_key: &str) -> (TestApp, Value) {
    let app = TestApp::spawn().await;
    let key = app.create_openai_key("k", api_key).await;
    app.providers.reset().await;
    (app, key)
}

/// Stores a key of `provider` that the fake accepts, the active one when `active`.
async fn accepted_key(app: &TestApp, provider: &str, name: &str, api_key: &str, active: bool) -> Value {
    fake::accept_models(&app.providers, provider).await;
    let mut body = key_body(app, provider, name, api_key);
    if active {
        body["set_as_active"] = json!(true);
    }
    app.post(&app.llma("provider_keys/"), body).await.expect(201).json()
}

/// Posts a key of `provider` while the fake answers its check with `status`.
async fn posted_while_refused(app: &TestApp, provider: &str, status: u16, name: &str, api_key: &str) -> Reply {
    fake::answer_status(&app.providers, provider, status).await;
    app.post(&app.llma("provider_keys/"), key_body(app, provider, name, api_key)).await
}

fn key_path(app: &TestApp, id: &str) -> String {
    app.llma(&format!("provider_keys/{id}/"))
}

fn id_of(key: &Value) -> String {
    key["id"].as_str().unwrap_or_else(|| panic!("no id in {key}")).to_owned()
}

async fn stored_keys(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM provider_keys").fetch_one(&app.db.pool).await.unwrap()
}

async fn active_key(app: &TestApp) -> Option<Uuid> {
    sqlx::query_scalar::<_, Option<Uuid>>("SELECT active_provider_key_id FROM evaluation_configs WHERE project_id = $1")
        .bind(app.project)
        .fetch_optional(&app.db.pool)
        .await
        .unwrap()
        .flatten()
}

/// Inserts a model configuration of the test project that uses `key`; returns its id.
async fn insert_model_configuration(app: &TestApp, key: &str) -> Uuid {
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO model_configurations (id, project_id, provider, model, provider_key_id) \
         VALUES ($1, $2, 'openai', 'gpt-5-mini', $3)",
    )
    .bind(id)
    .bind(app.project)
    .bind(Uuid::parse_str(key).unwrap())
    .execute(&app.db.pool)
    .await
    .unwrap();
    id
}

async fn key_of_configuration(app: &TestApp, configuration: Uuid) -> Option<Uuid> {
    sqlx::query_scalar::<_, Option<Uuid>>("SELECT provider_key_id FROM model_configurations WHERE id = $1")
        .bind(configuration)
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

fn header(request: &wiremock::Request, name: &str) -> Option<String> {
    request.headers.get(name).map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn creating_a_key_of_each_provider_is_201_with_the_stored_key() {
    let app = TestApp::spawn().await;
    for (provider, api_key, mask, _) in PROVIDERS {
        fake::accept_models(&app.providers, provider).await;
        let reply =
            app.post(&app.llma("provider_keys/"), key_body(&app, provider, "My key", api_key)).await.expect(201);
        assert!(!reply.text.contains(api_key), "the raw key is in the response: {}", reply.text);
        let key = reply.json();
        Uuid::parse_str(key["id"].as_str().unwrap()).unwrap_or_else(|e| panic!("{provider}: id is no UUID ({e})"));
        assert_eq!(key["provider"], provider);
        assert_eq!(key["name"], "My key");
        assert_eq!(key["state"], "ok", "{provider}");
        assert_eq!(key["error_message"], Value::Null);
        assert_eq!(key["api_key_masked"], mask, "{provider}");
        assert!(key.get("api_key").is_none(), "{provider}: api_key must be write-only: {key}");
        assert!(key.get("azure_endpoint").is_none() && key.get("set_as_active").is_none(), "{key}");
        if provider == "azure_openai" {
            assert_eq!(key["azure_endpoint_display"], azure_endpoint(&app));
            assert_eq!(key["api_version_display"], "2024-10-21");
        } else {
            assert_eq!(key["azure_endpoint_display"], Value::Null, "{provider}");
            assert_eq!(key["api_version_display"], Value::Null, "{provider}");
        }
        let created_at = key["created_at"].as_str().unwrap();
        let parsed = sqlx::types::chrono::DateTime::parse_from_rfc3339(created_at)
            .unwrap_or_else(|e| panic!("created_at {created_at} is not RFC 3339: {e}"));
        assert_eq!(parsed.offset().local_minus_utc(), 0, "created_at is not UTC: {created_at}");
        assert_eq!(key["last_used_at"], Value::Null);
        let created_by = &key["created_by"];
        let fields: Vec<&str> = created_by.as_object().unwrap().keys().map(String::as_str).collect();
        for field in [
            "id",
            "uuid",
            "distinct_id",
            "first_name",
            "last_name",
            "email",
            "is_email_verified",
            "hedgehog_config",
            "role_at_organization",
        ] {
            assert!(fields.contains(&field), "created_by lacks {field}: {created_by}");
        }
        assert!(created_by["id"].is_i64(), "{created_by}");
        Uuid::parse_str(created_by["uuid"].as_str().unwrap()).unwrap();
        assert_eq!(created_by["email"], "admin@example.com");
        assert!(created_by["hedgehog_config"].is_object(), "{created_by}");
    }
    assert_eq!(stored_keys(&app).await, 7);
}

#[tokio::test]
async fn each_provider_receives_the_key_in_its_own_header() {
    let app = TestApp::spawn().await;
    for (provider, api_key, _, key_header) in PROVIDERS {
        fake::accept_models(&app.providers, provider).await;
        app.post(&app.llma("provider_keys/"), key_body(&app, provider, "k", api_key)).await.expect(201);
        let requests = fake::requests_to(&app.providers, &fake::check_path(provider)).await;
        assert_eq!(requests.len(), 1, "{provider}: one check call");
        let request = &requests[0];
        assert_eq!(request.method.as_str(), "GET");
        let expected = if key_header == "authorization" { format!("Bearer {api_key}") } else { api_key.to_owned() };
        assert_eq!(header(request, key_header).as_deref(), Some(expected.as_str()), "{provider}");
        if key_header != "authorization" {
            assert_eq!(header(request, "authorization"), None, "{provider} must not get a bearer");
        }
        assert!(!request.url.as_str().contains(api_key), "{provider}: key in the URL {}", request.url);
        match provider {
            "anthropic" => assert!(header(request, "anthropic-version").is_some(), "anthropic-version missing"),
            "azure_openai" => {
                let version = request.url.query_pairs().find(|(k, _)| k == "api-version").map(|(_, v)| v.into_owned());
                assert_eq!(version.as_deref(), Some("2024-10-21"));
            }
            _ => {}
        }
    }
    assert_eq!(fake::all_requests(&app.providers).await.len(), 7, "one check call per key, nothing else");
}

#[tokio::test]
async fn provider_aliases_and_upper_case_are_accepted() {
    let app = TestApp::spawn().await;
    for provider in ["gemini", "azure_openai", "together_ai", "openai"] {
        fake::accept_models(&app.providers, provider).await;
    }
    for (given, stored) in [
        ("google", "gemini"),
        ("azure", "azure_openai"),
        ("together", "together_ai"),
        (" OpenAI ", "openai"),
        ("GOOGLE", "gemini"),
    ] {
        let body = key_body(&app, given, "alias", "sk-test-alias-12345");
        let key = app.post(&app.llma("provider_keys/"), body).await.expect(201).json();
        assert_eq!(key["provider"], stored, "{given}");
    }
}

#[tokio::test]
async fn a_key_the_provider_rejects_is_400_on_api_key_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let reply = posted_while_refused(&app, "openai", 401, "rejected", "sk-test-rejected-12345").await.expect(400);
    let body = reply.json();
    assert_eq!(body["attr"], "api_key");
    assert_eq!(body["detail"], "Invalid API key");
    assert!(!reply.text.contains("Incorrect API key provided"), "the provider's body is echoed: {}", reply.text);
    assert_eq!(stored_keys(&app).await, 0);
    assert_eq!(app.get(&app.llma("provider_keys/")).await.expect(200).json()["count"], 0);
}

#[tokio::test]
async fn keys_without_the_expected_prefix_are_400_before_any_provider_call() {
    let app = TestApp::spawn().await;
    for provider in ["openai", "anthropic"] {
        fake::accept_models(&app.providers, provider).await;
    }
    for (provider, api_key, prefix) in
        [("openai", "pk-test-12345678", "'sk-'"), ("anthropic", "sk-test-12345678", "'sk-ant-'")]
    {
        let body =
            app.post(&app.llma("provider_keys/"), key_body(&app, provider, "k", api_key)).await.expect(400).json();
        assert_eq!(body["attr"], "api_key", "{provider}");
        assert!(body["detail"].as_str().unwrap().contains(prefix), "{provider}: {body}");
    }
    assert!(fake::all_requests(&app.providers).await.is_empty(), "a badly formed key reached the provider");
    assert_eq!(stored_keys(&app).await, 0);
}

#[tokio::test]
async fn an_azure_key_without_an_endpoint_is_400_on_azure_endpoint() {
    let app = TestApp::spawn().await;
    fake::accept_models(&app.providers, "azure_openai").await;
    for endpoint in [None, Some(""), Some("   ")] {
        let mut body = json!({"provider": "azure_openai", "name": "az", "api_key": "azure-test-key-12345"});
        if let Some(endpoint) = endpoint {
            body["azure_endpoint"] = json!(endpoint);
        }
        let error = app.post(&app.llma("provider_keys/"), body).await.expect(400).json();
        assert_eq!(error["attr"], "azure_endpoint", "{endpoint:?}: {error}");
    }
    assert!(fake::all_requests(&app.providers).await.is_empty());
    assert_eq!(stored_keys(&app).await, 0);
}

#[tokio::test]
async fn azure_endpoints_outside_azure_are_refused_without_any_call_when_private_endpoints_are_off() {
    let app = TestApp::spawn_with(&[("LLMA_ALLOW_PRIVATE_ENDPOINTS", "false")]).await;
    fake::accept_models(&app.providers, "azure_openai").await;
    let fake_endpoint = azure_endpoint(&app);
    const HTTPS: &str = "azure_endpoint must use https://.";
    const AZURE: &str = "azure_endpoint must be an Azure OpenAI endpoint (a host ending in .openai.azure.com, \
                         .cognitiveservices.azure.com or .services.ai.azure.com).";
    for (endpoint, detail) in [
        ("http://myres.openai.azure.com", HTTPS),
        ("https://evil.example.com", AZURE),
        ("https://169.254.169.254", AZURE),
        ("http://169.254.169.254/latest/meta-data", HTTPS),
        ("https://evil.com/.openai.azure.com", AZURE),
        ("https://myres.openai.azure.com.evil.com", AZURE),
        (fake_endpoint.as_str(), HTTPS),
    ] {
        let body = json!({"provider": "azure_openai", "name": "az", "api_key": "azure-test-key-12345",
                          "azure_endpoint": endpoint});
        let error = app.post(&app.llma("provider_keys/"), body).await.expect(400).json();
        // The sentence of the refusal itself: a failed connection would also name
        // azure_endpoint, but say that the endpoint could not be reached.
        assert_eq!(
            (error["attr"].clone(), error["detail"].clone()),
            (json!("azure_endpoint"), json!(detail)),
            "{endpoint}"
        );
    }
    assert!(fake::all_requests(&app.providers).await.is_empty(), "a refused endpoint was called");
    assert_eq!(stored_keys(&app).await, 0);
}

#[tokio::test]
async fn an_azure_endpoint_that_answers_404_is_400_on_azure_endpoint() {
    let app = TestApp::spawn().await;
    let error = posted_while_refused(&app, "azure_openai", 404, "az", "azure-test-key-12345").await.expect(400).json();
    assert_eq!(error["attr"], "azure_endpoint");
    assert_eq!(error["detail"], "Azure endpoint not found — check the URL");
    assert_eq!(stored_keys(&app).await, 0);
}

#[tokio::test]
async fn names_that_are_missing_blank_or_longer_than_255_are_400_on_name() {
    let app = TestApp::spawn().await;
    fake::accept_models(&app.providers, "openai").await;
    let too_long = "n".repeat(256);
    for name in [None, Some(""), Some("   "), Some(too_long.as_str())] {
        let mut body = json!({"provider": "openai", "api_key": "sk-test-named-12345"});
        if let Some(name) = name {
            body["name"] = json!(name);
        }
        let error = app.post(&app.llma("provider_keys/"), body).await.expect(400).json();
        assert_eq!(error["attr"], "name", "{name:?}: {error}");
    }
    assert!(fake::all_requests(&app.providers).await.is_empty(), "an invalid request reached the provider");
    assert_eq!(stored_keys(&app).await, 0);
    // 255 characters is still fine
    let longest = "n".repeat(255);
    let key = app.post(&app.llma("provider_keys/"), key_body(&app, "openai", &longest, "sk-test-named-12345")).await;
    assert_eq!(key.expect(201).json()["name"], longest.as_str());
}

#[tokio::test]
async fn a_missing_or_unknown_provider_is_400_on_provider() {
    let app = TestApp::spawn().await;
    for provider in [json!("mistral"), json!(""), Value::Null] {
        let mut body = json!({"name": "k", "api_key": "sk-test-12345678"});
        if !provider.is_null() {
            body["provider"] = provider.clone();
        }
        let error = app.post(&app.llma("provider_keys/"), body).await.expect(400).json();
        assert_eq!(error["attr"], "provider", "{provider}: {error}");
    }
    let error = app
        .post(&app.llma("provider_keys/"), json!({"provider": "mistral", "name": "k", "api_key": "sk-test-12345678"}))
        .await
        .expect(400)
        .json();
    assert!(error["detail"].as_str().unwrap().starts_with("Invalid provider. Must be one of:"), "{error}");
    assert_eq!(stored_keys(&app).await, 0);
}

#[tokio::test]
async fn keys_of_eight_characters_or_fewer_are_masked_entirely() {
    let app = TestApp::spawn().await;
    fake::accept_models(&app.providers, "openai").await;
    for (api_key, mask) in [("sk-short", "****"), ("sk-", "****"), ("sk-123456", "sk-1...3456")] {
        let key = app.post(&app.llma("provider_keys/"), key_body(&app, "openai", "k", api_key)).await.expect(201);
        assert_eq!(key.json()["api_key_masked"], mask, "{api_key}");
    }
}

#[tokio::test]
async fn list_and_retrieve_return_the_stored_keys() {
    let app = TestApp::spawn().await;
    let first = app.create_openai_key("first", "sk-test-first-11111").await;
    let second = app.create_openai_key("second", "sk-test-second-22222").await;
    let list = app.get(&app.llma("provider_keys/")).await.expect(200).json();
    assert_eq!(list["count"], 2);
    let results = list["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0], second, "newest first");
    assert_eq!(results[1], first);
    for key in [&first, &second] {
        let retrieved = app.get(&key_path(&app, &id_of(key))).await.expect(200).json();
        assert_eq!(&retrieved, key);
        assert!(retrieved.get("api_key").is_none());
    }
}

#[tokio::test]
async fn patch_renames_a_key_without_calling_the_provider() {
    let app = TestApp::spawn().await;
    let key = app.create_openai_key("old name", "sk-test-rename-12345").await;
    app.providers.reset().await;
    let renamed = app.patch(&key_path(&app, &id_of(&key)), json!({"name": "  new name  "})).await.expect(200).json();
    assert_eq!(renamed["name"], "new name");
    assert_eq!(renamed["state"], "ok");
    assert_eq!(renamed["api_key_masked"], key["api_key_masked"]);
    assert_eq!(app.get(&key_path(&app, &id_of(&key))).await.expect(200).json()["name"], "new name");
    assert!(fake::all_requests(&app.providers).await.is_empty(), "a rename called the provider");
    let error = app.patch(&key_path(&app, &id_of(&key)), json!({"name": " "})).await.expect(400).json();
    assert_eq!(error["attr"], "name");
}

#[tokio::test]
async fn patching_in_a_key_the_provider_rejects_is_400_and_keeps_the_old_key() {
    let (app, key) = app_with_openai_key("sk-test-original-11111").await;
    fake::answer_status(&app.providers, "openai", 401).await;
    let error =
        app.patch(&key_path(&app, &id_of(&key)), json!({"api_key": "sk-test-replaced-99999"})).await.expect(400).json();
    assert_eq!(error["attr"], "api_key");
    assert_eq!(error["detail"], "Invalid API key");
    let stored = app.get(&key_path(&app, &id_of(&key))).await.expect(200).json();
    assert_eq!(stored["api_key_masked"], "sk-t...1111");
    assert_eq!(stored["state"], "ok");
    // the stored secret is still the old key
    app.providers.reset().await;
    fake::accept_models(&app.providers, "openai").await;
    app.post(&app.llma(&format!("provider_keys/{}/validate/", id_of(&key))), json!({})).await.expect(200);
    let requests = fake::requests_to(&app.providers, &fake::check_path("openai")).await;
    assert_eq!(header(&requests[0], "authorization").as_deref(), Some("Bearer sk-test-original-11111"));
}

#[tokio::test]
async fn patching_in_a_key_the_provider_accepts_stores_it_with_a_new_mask() {
    let (app, key) = app_with_openai_key("sk-test-original-11111").await;
    fake::answer_status(&app.providers, "openai", 429).await;
    app.post(&app.llma(&format!("provider_keys/{}/validate/", id_of(&key))), json!({})).await.expect(200);
    app.providers.reset().await;
    fake::accept_models(&app.providers, "openai").await;
    let updated =
        app.patch(&key_path(&app, &id_of(&key)), json!({"api_key": "sk-test-replaced-99999"})).await.expect(200).json();
    assert_eq!(updated["api_key_masked"], "sk-t...9999");
    assert_eq!(updated["state"], "ok");
    assert_eq!(updated["error_message"], Value::Null);
    assert!(updated.get("api_key").is_none());
    let requests = fake::requests_to(&app.providers, &fake::check_path("openai")).await;
    assert_eq!(requests.len(), 1, "the new key is checked once");
    assert_eq!(header(&requests[0], "authorization").as_deref(), Some("Bearer sk-test-replaced-99999"));
    assert_eq!(app.get(&key_path(&app, &id_of(&key))).await.expect(200).json(), updated);
}

#[tokio::test]
async fn put_needs_provider_and_name() {
    let app = TestApp::spawn().await;
    let key = app.create_openai_key("k", "sk-test-put-12345").await;
    let path = key_path(&app, &id_of(&key));
    for (body, attr) in [(json!({"name": "renamed"}), "provider"), (json!({"provider": "openai"}), "name")] {
        let error = app.put(&path, body).await.expect(400).json();
        assert_eq!(error["attr"], attr, "{error}");
    }
    assert_eq!(app.get(&path).await.expect(200).json()["name"], "k");
    let replaced = app.put(&path, json!({"provider": "openai", "name": "renamed"})).await.expect(200).json();
    assert_eq!(replaced["name"], "renamed");
}

#[tokio::test]
async fn the_provider_of_a_key_cannot_change() {
    let app = TestApp::spawn().await;
    fake::accept_models(&app.providers, "anthropic").await;
    let key = app.create_openai_key("k", "sk-test-provider-12345").await;
    let path = key_path(&app, &id_of(&key));
    let error = app.patch(&path, json!({"provider": "anthropic"})).await.expect(400).json();
    assert_eq!(error["attr"], "provider");
    let error = app.put(&path, json!({"provider": "anthropic", "name": "k"})).await.expect(400).json();
    assert_eq!(error["attr"], "provider");
    assert_eq!(app.get(&path).await.expect(200).json()["provider"], "openai");
    // naming the same provider (any spelling) is fine
    app.patch(&path, json!({"provider": " OpenAI "})).await.expect(200);
}

#[tokio::test]
async fn changing_an_azure_endpoint_or_version_without_a_new_key_resets_the_state_to_unknown() {
    let app = TestApp::spawn().await;
    let key = accepted_key(&app, "azure_openai", "az", "azure-test-key-12345", false).await;
    let path = key_path(&app, &id_of(&key));
    app.providers.reset().await;
    let moved = format!("{}/azure-moved", app.providers.uri());
    let updated = app.patch(&path, json!({"azure_endpoint": moved})).await.expect(200).json();
    assert_eq!(updated["state"], "unknown");
    assert_eq!(updated["error_message"], Value::Null);
    assert_eq!(updated["azure_endpoint_display"], moved.as_str());
    assert_eq!(updated["api_key_masked"], "azur...2345");
    assert!(fake::all_requests(&app.providers).await.is_empty(), "an endpoint change without a key is not checked");
    assert_eq!(app.get(&path).await.expect(200).json()["state"], "unknown");

    // re-validating uses the stored key at the new endpoint
    fake::answer_json(&app.providers, "/azure-moved/openai/models", 200, fake::ok_body("azure_openai")).await;
    let validated = app.post(&format!("{path}validate/"), json!({})).await.expect(200).json();
    assert_eq!(validated["state"], "ok");
    let requests = fake::requests_to(&app.providers, "/azure-moved/openai/models").await;
    assert_eq!(requests.len(), 1);
    assert_eq!(header(&requests[0], "api-key").as_deref(), Some("azure-test-key-12345"));

    // a version change alone resets it too
    let updated = app.patch(&path, json!({"api_version": "2025-04-01-preview"})).await.expect(200).json();
    assert_eq!(updated["state"], "unknown");
    assert_eq!(updated["api_version_display"], "2025-04-01-preview");
    assert_eq!(updated["azure_endpoint_display"], moved.as_str());
}

#[tokio::test]
async fn set_as_active_on_create_makes_the_key_the_active_one() {
    let app = TestApp::spawn().await;
    fake::accept_models(&app.providers, "openai").await;
    app.create_openai_key("not active", "sk-test-passive-12345").await;
    assert_eq!(active_key(&app).await, None);
    let mut body = key_body(&app, "openai", "active", "sk-test-active-12345");
    body["set_as_active"] = json!(true);
    let key = app.post(&app.llma("provider_keys/"), body).await.expect(201).json();
    assert_eq!(active_key(&app).await, Some(Uuid::parse_str(&id_of(&key)).unwrap()));
}

#[tokio::test]
async fn set_as_active_on_patch_makes_the_key_the_active_one() {
    let app = TestApp::spawn().await;
    let first = accepted_key(&app, "openai", "first", "sk-test-first-12345", true).await;
    let second = app.create_openai_key("second", "sk-test-second-12345").await;
    assert_eq!(active_key(&app).await, Some(Uuid::parse_str(&id_of(&first)).unwrap()));
    app.patch(&key_path(&app, &id_of(&second)), json!({"set_as_active": true})).await.expect(200);
    assert_eq!(active_key(&app).await, Some(Uuid::parse_str(&id_of(&second)).unwrap()));
}

#[tokio::test]
async fn deleting_a_key_is_204_and_then_it_is_gone() {
    let app = TestApp::spawn().await;
    let key = app.create_openai_key("doomed", "sk-test-doomed-12345").await;
    let path = key_path(&app, &id_of(&key));
    let reply = app.delete(&path).await.expect(204);
    assert!(reply.text.is_empty(), "204 with a body: {}", reply.text);
    app.get(&path).await.expect(404);
    app.delete(&path).await.expect(404);
    assert_eq!(stored_keys(&app).await, 0);
}

#[tokio::test]
async fn deleting_with_a_replacement_moves_the_model_configurations() {
    let app = TestApp::spawn().await;
    let doomed = id_of(&app.create_openai_key("doomed", "sk-test-doomed-12345").await);
    let replacement = id_of(&app.create_openai_key("replacement", "sk-test-replacement-12345").await);
    let bystander = id_of(&app.create_openai_key("bystander", "sk-test-bystander-12345").await);
    let moving = [insert_model_configuration(&app, &doomed).await, insert_model_configuration(&app, &doomed).await];
    let staying = insert_model_configuration(&app, &bystander).await;
    app.delete(&format!("{}?replacement_key_id={replacement}", key_path(&app, &doomed))).await.expect(204);
    for configuration in moving {
        assert_eq!(key_of_configuration(&app, configuration).await, Some(Uuid::parse_str(&replacement).unwrap()));
    }
    assert_eq!(key_of_configuration(&app, staying).await, Some(Uuid::parse_str(&bystander).unwrap()));
    app.get(&key_path(&app, &doomed)).await.expect(404);
}

#[tokio::test]
async fn a_replacement_of_another_provider_is_400_and_nothing_changes() {
    let app = TestApp::spawn().await;
    fake::accept_models(&app.providers, "anthropic").await;
    let doomed = id_of(&app.create_openai_key("doomed", "sk-test-doomed-12345").await);
    let other = app
        .post(&app.llma("provider_keys/"), key_body(&app, "anthropic", "claude", "sk-ant-test-12345"))
        .await
        .expect(201)
        .json();
    let configuration = insert_model_configuration(&app, &doomed).await;
    let error = app
        .delete(&format!("{}?replacement_key_id={}", key_path(&app, &doomed), id_of(&other)))
        .await
        .expect(400)
        .json();
    assert_eq!(error["detail"], "Replacement key must be from the same provider");
    app.get(&key_path(&app, &doomed)).await.expect(200);
    assert_eq!(key_of_configuration(&app, configuration).await, Some(Uuid::parse_str(&doomed).unwrap()));
}

#[tokio::test]
async fn an_unknown_or_malformed_replacement_is_400_and_nothing_changes() {
    let app = TestApp::spawn().await;
    let doomed = id_of(&app.create_openai_key("doomed", "sk-test-doomed-12345").await);
    let configuration = insert_model_configuration(&app, &doomed).await;
    // a key of another project, same provider
    let other = app.cli(&["admin", "create-project", "--name", "Other"])["id"].as_i64().unwrap();
    let other_admin = app.user_with_key("admin@other.io", Some((other, "admin")), "*", None);
    let foreign = app
        .request(
            Method::POST,
            &format!("/api/environments/{other}/llm_analytics/provider_keys/"),
            Some(&other_admin),
            Some(key_body(&app, "openai", "foreign", "sk-test-foreign-12345")),
        )
        .await
        .expect(201)
        .json();
    let unknown = Uuid::new_v4().to_string();
    for replacement in [unknown.as_str(), "garbage", id_of(&foreign).as_str(), doomed.as_str()] {
        let error = app
            .delete(&format!("{}?replacement_key_id={replacement}", key_path(&app, &doomed)))
            .await
            .expect(400)
            .json();
        assert_eq!(error["detail"], "Replacement key not found", "{replacement}");
    }
    app.get(&key_path(&app, &doomed)).await.expect(200);
    assert_eq!(key_of_configuration(&app, configuration).await, Some(Uuid::parse_str(&doomed).unwrap()));
}

#[tokio::test]
async fn deleting_without_a_replacement_unlinks_the_model_configurations() {
    let app = TestApp::spawn().await;
    let doomed = id_of(&app.create_openai_key("doomed", "sk-test-doomed-12345").await);
    let configuration = insert_model_configuration(&app, &doomed).await;
    app.delete(&key_path(&app, &doomed)).await.expect(204);
    assert_eq!(key_of_configuration(&app, configuration).await, None, "the configuration keeps a deleted key");
}

#[tokio::test]
async fn deleting_the_active_key_clears_the_active_key() {
    let app = TestApp::spawn().await;
    let key = accepted_key(&app, "openai", "active", "sk-test-active-12345", true).await;
    assert!(active_key(&app).await.is_some());
    app.delete(&key_path(&app, &id_of(&key))).await.expect(204);
    assert_eq!(active_key(&app).await, None);
}

#[tokio::test]
async fn validate_records_and_returns_an_invalid_state_when_the_provider_now_rejects_the_key() {
    let (app, key) = app_with_openai_key("sk-test-revoked-12345").await;
    fake::answer_status(&app.providers, "openai", 401).await;
    let path = key_path(&app, &id_of(&key));
    let validated = app.post(&format!("{path}validate/"), json!({})).await.expect(200).json();
    assert_eq!(validated["id"], key["id"]);
    assert_eq!(validated["state"], "invalid");
    assert_eq!(validated["error_message"], "Invalid API key");
    assert_eq!(validated["api_key_masked"], key["api_key_masked"]);
    assert!(validated.get("api_key").is_none());
    let stored = app.get(&path).await.expect(200).json();
    assert_eq!(stored["state"], "invalid");
    assert_eq!(stored["error_message"], "Invalid API key");
    let requests = fake::requests_to(&app.providers, &fake::check_path("openai")).await;
    assert_eq!(header(&requests[0], "authorization").as_deref(), Some("Bearer sk-test-revoked-12345"));
}

#[tokio::test]
async fn validate_records_an_error_state_when_the_provider_rate_limits_and_ok_once_it_accepts() {
    let app = TestApp::spawn().await;
    let key = app.create_openai_key("k", "sk-test-limited-12345").await;
    let path = format!("{}validate/", key_path(&app, &id_of(&key)));
    app.providers.reset().await;
    fake::answer_status(&app.providers, "openai", 429).await;
    let validated = app.post(&path, json!({})).await.expect(200).json();
    assert_eq!(validated["state"], "error");
    assert_eq!(validated["error_message"], "Rate limited, please try again later");
    assert_eq!(app.get(&key_path(&app, &id_of(&key))).await.expect(200).json()["state"], "error");
    app.providers.reset().await;
    fake::accept_models(&app.providers, "openai").await;
    let validated = app.post(&path, json!({})).await.expect(200).json();
    assert_eq!(validated["state"], "ok");
    assert_eq!(validated["error_message"], Value::Null);
}

#[tokio::test]
async fn unknown_or_malformed_key_ids_are_404() {
    let app = TestApp::spawn().await;
    fake::accept_models(&app.providers, "openai").await;
    let unknown = Uuid::new_v4().to_string();
    for id in [unknown.as_str(), "garbage", "123"] {
        let path = key_path(&app, id);
        app.get(&path).await.expect(404);
        app.patch(&path, json!({"name": "x"})).await.expect(404);
        app.put(&path, json!({"provider": "openai", "name": "x"})).await.expect(404);
        app.delete(&path).await.expect(404);
        app.post(&format!("{path}validate/"), json!({})).await.expect(404);
    }
    assert!(fake::all_requests(&app.providers).await.is_empty());
}

#[tokio::test]
async fn an_azure_api_version_is_used_for_the_check_and_bounded_to_20_characters() {
    let app = TestApp::spawn().await;
    fake::accept_models(&app.providers, "azure_openai").await;
    let mut body = key_body(&app, "azure_openai", "az", "azure-test-key-12345");
    body["api_version"] = json!("2025-04-01-preview-and-more");
    let error = app.post(&app.llma("provider_keys/"), body.clone()).await.expect(400).json();
    assert_eq!(error["attr"], "api_version");
    assert!(fake::all_requests(&app.providers).await.is_empty());
    body["api_version"] = json!("2025-04-01-preview");
    let key = app.post(&app.llma("provider_keys/"), body).await.expect(201).json();
    assert_eq!(key["api_version_display"], "2025-04-01-preview");
    let requests = fake::requests_to(&app.providers, &fake::check_path("azure_openai")).await;
    let version = requests[0].url.query_pairs().find(|(k, _)| k == "api-version").map(|(_, v)| v.into_owned());
    assert_eq!(version.as_deref(), Some("2025-04-01-preview"));
}

#[tokio::test]
async fn keys_created_at_the_same_time_are_listed_by_ascending_id() {
    // Spec 0 "Lists": ordering `-created_at, id` — newest first, ties broken by id ascending.
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(id_of(&app.create_openai_key(&format!("key {n}"), &format!("sk-test-tie-{n}-12345")).await));
    }
    sqlx::query("UPDATE provider_keys SET created_at = '2025-01-01T00:00:00Z'").execute(&app.db.pool).await.unwrap();
    ids.sort_by_key(|id| Uuid::parse_str(id).unwrap());
    let list = app.get(&app.llma("provider_keys/")).await.expect(200).json();
    let listed: Vec<String> = list["results"].as_array().unwrap().iter().map(id_of).collect();
    assert_eq!(listed, ids, "ties on created_at must be ordered by id ascending");
}

#[tokio::test]
async fn validating_a_key_without_a_stored_secret_is_400() {
    let app = TestApp::spawn().await;
    let key = app.create_openai_key("k", "sk-test-nosecret-12345").await;
    sqlx::query("UPDATE provider_keys SET sealed_secret = NULL").execute(&app.db.pool).await.unwrap();
    app.providers.reset().await;
    let error = app.post(&format!("{}validate/", key_path(&app, &id_of(&key))), json!({})).await.expect(400).json();
    assert_eq!(error["detail"], "No API key configured for this provider key.");
    assert!(fake::all_requests(&app.providers).await.is_empty());
}

#[tokio::test]
async fn the_azure_endpoint_guard_also_applies_to_updates() {
    let mut app = TestApp::spawn().await;
    let key = accepted_key(&app, "azure_openai", "az", "azure-test-key-12345", false).await;
    app.set_env("LLMA_ALLOW_PRIVATE_ENDPOINTS", "false");
    app.restart();
    app.providers.reset().await;
    fake::accept_models(&app.providers, "azure_openai").await;
    let path = key_path(&app, &id_of(&key));
    let private = format!("{}/azure-other", app.providers.uri());
    for endpoint in ["https://169.254.169.254", "https://evil.example.com", "http://myres.openai.azure.com", &private] {
        for body in
            [json!({"azure_endpoint": endpoint}), json!({"azure_endpoint": endpoint, "api_key": "azure-new-key-99999"})]
        {
            let error = app.patch(&path, body.clone()).await.expect(400).json();
            assert_eq!(error["attr"], "azure_endpoint", "{body}: {error}");
        }
    }
    assert!(fake::all_requests(&app.providers).await.is_empty(), "a refused endpoint was called");
    let stored = app.get(&path).await.expect(200).json();
    assert_eq!(stored["azure_endpoint_display"], azure_endpoint(&app));
    assert_eq!(stored["state"], "ok");
}

#[tokio::test]
async fn a_patched_key_gets_the_format_check_before_any_call() {
    let (app, key) = app_with_openai_key("sk-test-format-12345").await;
    fake::accept_models(&app.providers, "openai").await;
    for api_key in ["pk-test-wrong-12345", "", "   "] {
        let error = app.patch(&key_path(&app, &id_of(&key)), json!({"api_key": api_key})).await.expect(400).json();
        assert_eq!(error["attr"], "api_key", "{api_key:?}: {error}");
    }
    assert!(fake::all_requests(&app.providers).await.is_empty());
    assert_eq!(app.get(&key_path(&app, &id_of(&key))).await.expect(200).json()["api_key_masked"], "sk-t...2345");
}

#[tokio::test]
async fn read_only_fields_in_the_body_are_ignored() {
    let app = TestApp::spawn().await;
    fake::accept_models(&app.providers, "openai").await;
    let forged_id = Uuid::new_v4().to_string();
    let mut body = key_body(&app, "openai", "k", "sk-test-readonly-12345");
    for (field, value) in [
        ("id", json!(forged_id)),
        ("state", json!("invalid")),
        ("error_message", json!("forged")),
        ("api_key_masked", json!("forged")),
        ("created_at", json!("2000-01-01T00:00:00Z")),
        ("last_used_at", json!("2000-01-01T00:00:00Z")),
        ("azure_endpoint_display", json!("https://forged.openai.azure.com")),
    ] {
        body[field] = value;
    }
    let key = app.post(&app.llma("provider_keys/"), body.clone()).await.expect(201).json();
    assert_ne!(key["id"], forged_id.as_str());
    assert_eq!(key["state"], "ok");
    assert_eq!(key["error_message"], Value::Null);
    assert_eq!(key["api_key_masked"], "sk-t...2345");
    assert!(!key["created_at"].as_str().unwrap().starts_with("2000"), "{key}");
    assert_eq!(key["last_used_at"], Value::Null);
    assert_eq!(key["azure_endpoint_display"], Value::Null);
    let patched = app
        .patch(
            &key_path(&app, &id_of(&key)),
            json!({"state": "invalid", "error_message": "forged", "api_key_masked": "forged"}),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(patched, key);
}
