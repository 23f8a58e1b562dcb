//! Spec section 10: the binary's commands, configuration errors, health, docs, shutdown.

use std::process::Command;
use std::time::Duration;

use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = TestApp::spawn().await;
    app.request(reqwest::Method::GET, "/_health", None, None).await.expect(200);
    app.request(reqwest::Method::GET, "/_ready/", None, None).await.expect(200);
}

#[tokio::test]
async fn readiness_is_503_when_the_database_is_gone() {
    let app = TestApp::spawn().await;
    // Terminate this test database's server-side connections and forbid new ones.
    let name = app.db.name().to_owned();
    let admin = sqlx::PgPool::connect(&test_support::admin_url()).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(r#"ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false"#)))
        .execute(&admin)
        .await
        .unwrap();
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
        .bind(&name)
        .execute(&admin)
        .await
        .unwrap();
    let reply = app.request(reqwest::Method::GET, "/_ready", None, None).await.expect(503);
    assert_eq!(reply.json()["status"], "unavailable");
    app.request(reqwest::Method::GET, "/_health", None, None).await.expect(200);
}

#[tokio::test]
async fn the_openapi_document_is_generated_and_lists_every_endpoint() {
    let app = TestApp::spawn().await;
    let schema = app.request(reqwest::Method::GET, "/api/schema/", None, None).await.expect(200).json();
    assert!(schema["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = schema["paths"].as_object().unwrap();
    for expected in [
        "/api/environments/{project_id}/llm_analytics/provider_keys/",
        "/api/environments/{project_id}/llm_analytics/provider_keys/{id}/",
        "/api/environments/{project_id}/llm_analytics/provider_keys/{id}/validate/",
        "/api/environments/{project_id}/llm_analytics/provider_key_validations/",
        "/api/environments/{project_id}/llm_analytics/models/",
    ] {
        assert!(paths.contains_key(expected), "missing {expected}");
    }
    let key_schema = &schema["components"]["schemas"]["ProviderKeyDto"]["properties"];
    assert!(key_schema.get("api_key_masked").is_some());
    assert!(key_schema.get("api_key").is_none(), "the raw key is never in a response schema");
}

#[tokio::test]
async fn the_docs_page_renders_from_assets_the_binary_serves() {
    let app = TestApp::spawn().await;
    let page = app.request(reqwest::Method::GET, "/api/docs/", None, None).await.expect(200);
    assert!(page.headers["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(page.text.contains("swagger"), "{}", page.text);
    assert!(!page.text.contains("https://"), "the page must not load from the internet: {}", page.text);
    for asset in ["swagger-ui-bundle.js", "swagger-ui.css", "swagger-initializer.js"] {
        let reply = app.request(reqwest::Method::GET, &format!("/api/docs/{asset}"), None, None).await.expect(200);
        assert!(reply.text.len() > 100, "{asset} is empty");
    }
    let initializer = app.request(reqwest::Method::GET, "/api/docs/swagger-initializer.js", None, None).await;
    assert!(initializer.text.contains("/api/schema/"), "{}", initializer.text);
}

fn run_with_env(env: &[(&str, &str)], args: &[&str]) -> (i32, String) {
    let mut command = Command::new(BINARY);
    command.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.args(args).output().unwrap();
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[tokio::test]
async fn bad_configuration_exits_non_zero_with_one_line_naming_the_variable() {
    let db = test_support::TestDatabase::create().await;
    let key = new_encryption_key("k1");
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("DATABASE_URL", &db.url), ("LLMA_ENCRYPTION_KEYS", &key), ("LLMA_BIND", "nowhere")], "LLMA_BIND"),
        (vec![("LLMA_ENCRYPTION_KEYS", &key)], "DATABASE_URL"),
        (vec![("DATABASE_URL", &db.url), ("LLMA_BIND", "127.0.0.1:0")], "LLMA_ENCRYPTION_KEYS"),
        (
            vec![("DATABASE_URL", &db.url), ("LLMA_BIND", "127.0.0.1:0"), ("LLMA_ENCRYPTION_KEYS", "k1:tooshort")],
            "LLMA_ENCRYPTION_KEYS",
        ),
        (
            vec![("DATABASE_URL", &db.url), ("LLMA_ENCRYPTION_KEYS", &key), ("LLMA_OPENAI_BASE_URL", "ftp://x")],
            "LLMA_OPENAI_BASE_URL",
        ),
        (
            vec![
                ("DATABASE_URL", &db.url),
                ("LLMA_ENCRYPTION_KEYS", &key),
                ("LLMA_ALLOW_PRIVATE_ENDPOINTS", "perhaps"),
            ],
            "LLMA_ALLOW_PRIVATE_ENDPOINTS",
        ),
        // Checked before the database is touched: nothing listens on port 1.
        (
            vec![("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none"), ("LLMA_ENCRYPTION_KEYS", "k1:tooshort")],
            "LLMA_ENCRYPTION_KEYS",
        ),
        (
            vec![
                ("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none"),
                ("LLMA_ENCRYPTION_KEYS", &key),
                ("LLMA_SYSTEM_LLM_PROVIDER", "azure_openai"),
                ("LLMA_SYSTEM_LLM_API_KEY", "az-key"),
                ("LLMA_SYSTEM_LLM_MODEL", "gpt-4o"),
                ("LLMA_SYSTEM_LLM_AZURE_ENDPOINT", "https://attacker.example.com"),
            ],
            "LLMA_SYSTEM_LLM_AZURE_ENDPOINT",
        ),
    ];
    for (env, variable) in cases {
        let (code, stderr) = run_with_env(&env, &["serve"]);
        assert_eq!(code, 2, "{variable}: exit code 2 for a configuration problem; stderr: {stderr}");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{variable}: expected one line, got {stderr}");
        assert!(lines[0].contains(variable), "{variable}: {stderr}");
    }
}

#[tokio::test]
async fn admin_commands_print_json_and_refuse_bad_input() {
    let app = TestApp::spawn().await;
    let project = app.cli(&["admin", "create-project", "--name", "Acme"]);
    assert_eq!(project["name"], "Acme");
    assert!(project["api_token"].as_str().unwrap().starts_with("phc_"));
    let id = project["id"].as_i64().unwrap().to_string();
    let user = app.cli(&["admin", "create-user", "--email", "ops@acme.io", "--project", &id, "--level", "member"]);
    assert_eq!(user["email"], "ops@acme.io");
    assert!(user["id"].is_i64() && user["uuid"].is_string());
    let key = app.cli(&[
        "admin",
        "create-api-key",
        "--email",
        "ops@acme.io",
        "--scopes",
        "llm_analytics:read,evaluation:write",
        "--projects",
        &id,
        "--label",
        "ci",
    ]);
    assert!(key["key"].as_str().unwrap().starts_with("phx_"));
    assert_eq!(key["scopes"], json!(["llm_analytics:read", "evaluation:write"]));
    let (stored,): (String,) = sqlx::query_as("SELECT token_hash FROM personal_api_keys WHERE id = $1::uuid")
        .bind(key["id"].as_str().unwrap())
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_ne!(stored, key["key"].as_str().unwrap(), "only the hash is stored");

    for args in [
        vec!["admin", "create-user", "--email", "ops@acme.io"],
        vec!["admin", "create-user", "--email", "not-an-email"],
        vec!["admin", "create-user", "--email", "x@acme.io", "--project", "999999"],
        vec!["admin", "create-api-key", "--email", "nobody@acme.io", "--scopes", "*"],
        vec!["admin", "create-api-key", "--email", "ops@acme.io", "--scopes", "billing:read"],
        vec!["admin", "create-project", "--name", " "],
    ] {
        let (code, stdout, stderr) = app.cli_raw(&args);
        assert_ne!(code, 0, "{args:?} succeeded: {stdout}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    }
}

#[tokio::test]
async fn migrate_is_idempotent() {
    let app = TestApp::spawn().await;
    assert_eq!(app.cli(&["migrate"]), json!({"migrated": true}));
    assert_eq!(app.cli(&["migrate"]), json!({"migrated": true}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_requests_then_exits_zero() {
    let mut app = TestApp::spawn().await;
    Mock::given(method("GET"))
        .and(path(fake::check_path("openai")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(fake::ok_body("openai")).set_delay(Duration::from_millis(1500)),
        )
        .mount(&app.providers)
        .await;
    let url = format!("{}{}", app.base_url, app.llma("provider_key_validations/"));
    let in_flight = tokio::spawn({
        let client = app.client.clone();
        let key = app.admin_key.clone();
        async move { client.post(url).bearer_auth(key).json(&json!({"api_key": "sk-slow-check-123456"})).send().await }
    });
    test_support::wait_until(Duration::from_secs(10), || {
        let providers = &app.providers;
        async move { !providers.received_requests().await.unwrap_or_default().is_empty() }
    })
    .await;

    let status = tokio::task::block_in_place(|| app.terminate());

    assert!(status.success(), "exit status {status}");
    let response = in_flight.await.unwrap().expect("the in-flight request was answered");
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<serde_json::Value>().await.unwrap()["state"], "ok");
    let refused = app.client.get(format!("{}/_health", app.base_url)).send().await;
    assert!(refused.is_err(), "the server still accepts connections");
}
