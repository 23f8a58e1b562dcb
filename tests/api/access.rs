//! Spec section 0: authentication, scopes, project reach, errors, lists, paths.

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn no_token_is_401_with_the_error_shape() {
    let app = TestApp::spawn().await;
    let reply = app.request(Method::GET, &app.llma("provider_keys/"), None, None).await.expect(401);
    let body = reply.json();
    assert_eq!(body["type"], "authentication_error");
    assert_eq!(body["code"], "not_authenticated");
    assert!(body["detail"].as_str().unwrap().len() > 10);
    assert_eq!(body["attr"], serde_json::Value::Null);
}

#[tokio::test]
async fn unknown_and_malformed_tokens_are_401() {
    let app = TestApp::spawn().await;
    let unknown = format!("phx_{}", "a".repeat(44));
    for token in [unknown.as_str(), "phx_short", "not-a-key"] {
        app.request(Method::GET, &app.llma("provider_keys/"), Some(token), None).await.expect(401);
    }
}

#[tokio::test]
async fn a_missing_scope_is_403_naming_the_scope() {
    let app = TestApp::spawn().await;
    let key = app.user_with_key("reader@example.com", Some((app.project, "admin")), "evaluation:read", None);
    let reply = app.request(Method::GET, &app.llma("provider_keys/"), Some(&key), None).await.expect(403);
    let body = reply.json();
    assert_eq!(body["code"], "permission_denied");
    assert!(body["detail"].as_str().unwrap().contains("llm_provider_key:read"), "{body}");
    // write implies read
    let writer = app.user_with_key("writer@example.com", Some((app.project, "admin")), "llm_provider_key:write", None);
    app.request(Method::GET, &app.llma("provider_keys/"), Some(&writer), None).await.expect(200);
}

#[tokio::test]
async fn projects_the_key_cannot_reach_are_404() {
    let app = TestApp::spawn().await;
    let other = app.cli(&["admin", "create-project", "--name", "Other"])["id"].as_i64().unwrap();
    // not a member of `other`
    let path = format!("/api/environments/{other}/llm_analytics/provider_keys/");
    app.request(Method::GET, &path, Some(&app.admin_key), None).await.expect(404);
    // a project that does not exist, and one that cannot
    app.request(Method::GET, "/api/environments/999999/llm_analytics/provider_keys/", Some(&app.admin_key), None)
        .await
        .expect(404);
    app.request(Method::GET, "/api/environments/abc/llm_analytics/provider_keys/", Some(&app.admin_key), None)
        .await
        .expect(404);
    // a member whose key is restricted to another project
    let restricted =
        app.user_with_key("restricted@example.com", Some((app.project, "admin")), "*", Some(&other.to_string()));
    app.request(Method::GET, &app.llma("provider_keys/"), Some(&restricted), None).await.expect(404);
}

#[tokio::test]
async fn objects_of_another_project_are_404() {
    let app = TestApp::spawn().await;
    let key = app.create_openai_key("mine", "sk-test-owned-12345").await;
    let other = app.cli(&["admin", "create-project", "--name", "Other"])["id"].as_i64().unwrap();
    app.cli(&[
        "admin",
        "create-user",
        "--email",
        "admin@other.io",
        "--project",
        &other.to_string(),
        "--level",
        "admin",
    ]);
    let other_key = app.cli(&["admin", "create-api-key", "--email", "admin@other.io", "--scopes", "*"])["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/environments/{other}/llm_analytics/provider_keys/{}/", key["id"].as_str().unwrap());
    app.request(Method::GET, &path, Some(&other_key), None).await.expect(404);
    app.request(Method::DELETE, &path, Some(&other_key), None).await.expect(404);
    app.get(&app.llma(&format!("provider_keys/{}/", key["id"].as_str().unwrap()))).await.expect(200);
}

#[tokio::test]
async fn members_read_but_only_admins_write_provider_keys() {
    let app = TestApp::spawn().await;
    let member = app.user_with_key("member@example.com", Some((app.project, "member")), "*", None);
    app.request(Method::GET, &app.llma("provider_keys/"), Some(&member), None).await.expect(200);
    let body = json!({"provider": "openai", "name": "x", "api_key": "sk-test-12345678"});
    let reply =
        app.request(Method::POST, &app.llma("provider_keys/"), Some(&member), Some(body.clone())).await.expect(403);
    assert_eq!(reply.json()["detail"], "You don't have sufficient permissions in the project.");
    app.request(Method::POST, &app.llma("provider_key_validations/"), Some(&member), Some(body)).await.expect(403);
}

#[tokio::test]
async fn every_response_has_a_request_id_that_the_log_carries() {
    let app = TestApp::spawn().await;
    let ok = app.get(&app.llma("provider_keys/")).await.expect(200);
    let denied = app.request(Method::GET, &app.llma("provider_keys/"), None, None).await.expect(401);
    for reply in [ok, denied] {
        let id = reply.headers["x-request-id"].to_str().unwrap().to_owned();
        assert_eq!(id.len(), 36, "{id}");
        test_support::wait_until(std::time::Duration::from_secs(5), || {
            let logs = app.logs();
            let id = id.clone();
            async move { logs.contains(&id) }
        })
        .await;
    }
}

#[tokio::test]
async fn paths_work_with_and_without_trailing_slash() {
    let app = TestApp::spawn().await;
    app.get(&app.llma("provider_keys")).await.expect(200);
    app.get(&app.llma("provider_keys/")).await.expect(200);
    app.get(&app.llma("models?provider=openai")).await.expect(200);
    app.get(&app.llma("models/?provider=openai")).await.expect(200);
}

#[tokio::test]
async fn bad_bodies_get_clear_4xx() {
    let app = TestApp::spawn().await;
    let url = format!("{}{}", app.base_url, app.llma("provider_keys/"));
    let send = |body: Vec<u8>, content_type: &'static str| {
        app.client.post(url.clone()).bearer_auth(&app.admin_key).header("content-type", content_type).body(body).send()
    };
    let malformed = send(b"{\"name\": ".to_vec(), "application/json").await.unwrap();
    assert_eq!(malformed.status(), 400);
    assert_eq!(malformed.json::<serde_json::Value>().await.unwrap()["code"], "parse_error");
    let wrong_type = send(b"{}".to_vec(), "text/plain").await.unwrap();
    assert_eq!(wrong_type.status(), 415);
    let huge = send(format!("{{\"name\": \"{}\"}}", "x".repeat(1024 * 1024 + 10)).into_bytes(), "application/json")
        .await
        .unwrap();
    assert_eq!(huge.status(), 413);
    let wrong_field = send(br#"{"provider": "openai", "name": 5}"#.to_vec(), "application/json").await.unwrap();
    assert_eq!(wrong_field.status(), 400);
    assert_eq!(wrong_field.json::<serde_json::Value>().await.unwrap()["attr"], "name");
}

#[tokio::test]
async fn who_may_not_act_is_answered_before_the_body_is_read() {
    let app = TestApp::spawn().await;
    let reader = app.user_with_key("reader@example.com", Some((app.project, "admin")), "llm_provider_key:read", None);
    let member = app.user_with_key("member@example.com", Some((app.project, "member")), "llm_provider_key:write", None);
    let send = |path: String, key: Option<String>, body: &'static [u8], content_type: &'static str| {
        let request =
            app.client.post(format!("{}{path}", app.base_url)).header("content-type", content_type).body(body);
        match key {
            Some(key) => request.bearer_auth(key).send(),
            None => request.send(),
        }
    };
    let malformed: &[u8] = b"{\"name\": ";
    let keys = app.llma("provider_keys/");
    let code = |reply: reqwest::Response| async move {
        (reply.status().as_u16(), reply.json::<serde_json::Value>().await.unwrap()["code"].clone())
    };
    assert_eq!(
        code(send(keys.clone(), None, malformed, "application/json").await.unwrap()).await,
        (401, json!("not_authenticated"))
    );
    assert_eq!(
        code(send(keys.clone(), Some(reader), malformed, "application/json").await.unwrap()).await,
        (403, json!("permission_denied"))
    );
    assert_eq!(
        code(send(keys.clone(), Some(member), b"{}", "text/plain").await.unwrap()).await,
        (403, json!("permission_denied"))
    );
    let elsewhere = app.llma("provider_keys/").replacen(&format!("/{}/", app.project), "/999999/", 1);
    assert_eq!(
        send(elsewhere, Some(app.admin_key.clone()), malformed, "application/json").await.unwrap().status(),
        404
    );
    // With access, the body's own error.
    assert_eq!(
        code(send(keys, Some(app.admin_key.clone()), malformed, "application/json").await.unwrap()).await,
        (400, json!("parse_error"))
    );
}

#[tokio::test]
async fn lists_paginate_with_absolute_links() {
    let app = TestApp::spawn().await;
    for n in 0..3 {
        app.create_openai_key(&format!("key {n}"), &format!("sk-test-page-{n}-123456")).await;
    }
    let first = app.get(&app.llma("provider_keys/?limit=2")).await.expect(200).json();
    assert_eq!(first["count"], 3);
    assert_eq!(first["results"].as_array().unwrap().len(), 2);
    assert_eq!(first["results"][0]["name"], "key 2", "newest first");
    let next = first["next"].as_str().unwrap();
    assert!(next.starts_with(&app.base_url), "{next}");
    assert!(next.contains("offset=2") && next.contains("limit=2"), "{next}");
    assert!(first["previous"].is_null());
    let second = app.client.get(next).bearer_auth(&app.admin_key).send().await.unwrap();
    let second: serde_json::Value = second.json().await.unwrap();
    assert_eq!(second["results"].as_array().unwrap().len(), 1);
    assert!(second["next"].is_null());
    assert!(second["previous"].as_str().unwrap().contains("offset=0"));
    for bad in ["limit=-1", "limit=abc", "offset=-5", "limit=1001"] {
        let reply = app.get(&app.llma(&format!("provider_keys/?{bad}"))).await.expect(400);
        assert!(["limit", "offset"].contains(&reply.json()["attr"].as_str().unwrap()));
    }
}

#[tokio::test]
async fn unknown_routes_are_json_404() {
    let app = TestApp::spawn().await;
    let reply = app.get("/api/environments/1/llm_analytics/nothing_here/").await.expect(404);
    assert_eq!(reply.json()["code"], "not_found");
}
