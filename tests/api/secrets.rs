//! Secrets: the raw key never leaves, survives restarts sealed, and rotates.

use reqwest::Method;
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

const RAW_KEY: &str = "sk-proj-NEVER-SHOW-7f3a9c1e5b2d8046";
const RAW_MIDDLE: &str = "NEVER-SHOW-7f3a9c1e5b2d";

fn pg_dump(url: &str) -> String {
    let program = std::env::var("LLMA_TEST_PG_DUMP")
        .expect("LLMA_TEST_PG_DUMP is not set: run the tests with `cargo xtask test`, which finds pg_dump");
    let output = std::process::Command::new(program)
        .args(["--data-only", "--no-owner", url])
        .output()
        .expect("pg_dump runs (it ships with the PostgreSQL client)");
    assert!(output.status.success(), "pg_dump failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

async fn accept_key(app: &TestApp, key: &str) {
    Mock::given(method("GET"))
        .and(path(fake::check_path("openai")))
        .and(header("authorization", format!("Bearer {key}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(fake::ok_body("openai")))
        .mount(&app.providers)
        .await;
}

#[tokio::test]
async fn the_raw_key_appears_in_no_response_no_database_dump_and_no_log() {
    let app = TestApp::spawn().await;
    accept_key(&app, RAW_KEY).await;
    let mut replies = Vec::new();
    let created = app.post(&app.llma("provider_keys/"), prod_key()).await.expect(201);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(created.json()["api_key_masked"], "sk-p...8046");
    replies.push(created);
    replies.push(app.get(&app.llma("provider_keys/")).await.expect(200));
    replies.push(app.get(&app.llma(&format!("provider_keys/{id}/"))).await.expect(200));
    replies.push(app.patch(&app.llma(&format!("provider_keys/{id}/")), json!({"name": "renamed"})).await.expect(200));
    replies.push(app.post(&app.llma(&format!("provider_keys/{id}/validate/")), json!({})).await.expect(200));
    replies.push(
        app.post(&app.llma("provider_key_validations/"), json!({"provider": "openai", "api_key": RAW_KEY}))
            .await
            .expect(200),
    );
    // A rejected key must not be echoed in the error either.
    replies.push(
        app.post(&app.llma("provider_keys/"), json!({"provider": "anthropic", "name": "x", "api_key": RAW_KEY}))
            .await
            .expect(400),
    );
    replies.push(
        app.patch(&app.llma(&format!("provider_keys/{id}/")), json!({"set_as_active": RAW_KEY})).await.expect(400),
    );
    for reply in &replies {
        assert!(!reply.text.contains(RAW_MIDDLE), "a response leaked the key: {}", reply.text);
    }

    let dump = pg_dump(&app.db.url);
    assert!(dump.contains("sk-p...8046"), "the dump should hold the mask");
    assert!(!dump.contains(RAW_MIDDLE), "the database holds the raw key");

    // The server writes a request's lines as it answers; the reader thread may still be on
    // its way. Wait until every request's last line is in, then look.
    let ids: Vec<String> = replies.iter().map(|r| r.headers["x-request-id"].to_str().unwrap().to_owned()).collect();
    test_support::wait_until(std::time::Duration::from_secs(10), || {
        let logs = app.logs();
        let ids = ids.clone();
        async move {
            ids.iter()
                .all(|id| logs.lines().any(|line| line.contains(id.as_str()) && line.contains("finished processing")))
        }
    })
    .await;
    let logs = app.logs();
    assert!(!logs.contains(RAW_MIDDLE), "a log line leaked the key");
}

#[tokio::test]
async fn keys_survive_a_restart_and_still_decrypt() {
    let mut app = TestApp::spawn().await;
    accept_key(&app, RAW_KEY).await;
    let created = app.post(&app.llma("provider_keys/"), prod_key()).await.expect(201).json();
    let id = created["id"].as_str().unwrap().to_owned();

    app.restart();

    let stored = app.get(&app.llma(&format!("provider_keys/{id}/"))).await.expect(200).json();
    assert_eq!(stored["name"], "prod");
    assert_eq!(stored["api_key_masked"], created["api_key_masked"]);
    // The fake only accepts the exact key: "ok" proves it was decrypted intact.
    let validated = app.post(&app.llma(&format!("provider_keys/{id}/validate/")), json!({})).await.expect(200).json();
    assert_eq!(validated["state"], "ok", "{validated}");
}

fn prod_key() -> Value {
    json!({"provider": "openai", "name": "prod", "api_key": RAW_KEY})
}

async fn sealed_key_id(app: &TestApp) -> String {
    let (sealed,): (Vec<u8>,) =
        sqlx::query_as("SELECT sealed_secret FROM provider_keys").fetch_one(&app.db.pool).await.unwrap();
    let length = usize::from(sealed[1]);
    String::from_utf8(sealed[2..2 + length].to_vec()).unwrap()
}

#[tokio::test]
async fn rotate_encryption_key_reseals_every_secret_under_the_new_key() {
    let mut app = TestApp::spawn().await;
    accept_key(&app, RAW_KEY).await;
    let id = app.post(&app.llma("provider_keys/"), prod_key()).await.expect(201).id();
    assert_eq!(sealed_key_id(&app).await, "test1");
    let old = app.env("LLMA_ENCRYPTION_KEYS").unwrap().to_owned();
    let new = new_encryption_key("test2");

    // Without the old key the secret cannot be opened: the rotation below is what keeps it.
    app.set_env("LLMA_ENCRYPTION_KEYS", &new);
    app.restart();
    app.post(&app.llma(&format!("provider_keys/{id}/validate/")), json!({})).await.expect(500);

    app.set_env("LLMA_ENCRYPTION_KEYS", &format!("{new},{old}"));
    let report = app.cli(&["admin", "rotate-encryption-key"]);
    assert_eq!(report, json!({"examined": 1, "resealed": 1}));
    assert_eq!(sealed_key_id(&app).await, "test2");
    let again = app.cli(&["admin", "rotate-encryption-key"]);
    assert_eq!(again, json!({"examined": 1, "resealed": 0}), "rotation is idempotent");

    app.set_env("LLMA_ENCRYPTION_KEYS", &new);
    app.restart();
    let validated = app.post(&app.llma(&format!("provider_keys/{id}/validate/")), json!({})).await.expect(200).json();
    assert_eq!(validated["state"], "ok", "{validated}");
}

#[tokio::test]
async fn a_server_error_body_reveals_nothing_internal() {
    let mut app = TestApp::spawn().await;
    accept_key(&app, RAW_KEY).await;
    let id = app.post(&app.llma("provider_keys/"), prod_key()).await.expect(201).id();
    app.set_env("LLMA_ENCRYPTION_KEYS", &new_encryption_key("other"));
    app.restart();
    let reply = app
        .request(Method::POST, &app.llma(&format!("provider_keys/{id}/validate/")), Some(&app.admin_key), None)
        .await
        .expect(500);
    let body = reply.json();
    assert_eq!(body["type"], "server_error");
    let request_id = reply.headers["x-request-id"].to_str().unwrap().to_owned();
    assert!(!reply.text.contains("test1") && !reply.text.contains("sealed"), "{}", reply.text);
    test_support::wait_until(std::time::Duration::from_secs(5), || {
        let logs = app.logs();
        let request_id = request_id.clone();
        async move { logs.lines().any(|line| line.contains(&request_id) && line.contains("test1")) }
    })
    .await;
}
