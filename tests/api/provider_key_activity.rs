//! Spec section 1, the audit trail: every create, update, validation, assignment and
//! delete of a key is on record with its actor and masks only; the runner's automatic
//! invalidation has a null actor; a deleted key's trail stays readable.

use reqwest::Method;
use serde_json::{Value, json};
use test_support::wait_until;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::evaluations::{create_evaluation, evaluation_body, id_of, other_project};
use crate::helpers::*;
use crate::ingestion::capture;
use crate::judge::generation;

fn entries(page: &Value) -> Vec<Value> {
    page["results"].as_array().cloned().unwrap_or_default()
}

fn change<'a>(entry: &'a Value, field: &str) -> &'a Value {
    entry["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["field"] == field)
        .unwrap_or_else(|| panic!("{field} in {entry}"))
}

#[tokio::test]
async fn every_change_to_a_key_is_on_record_with_masks_only() {
    let app = TestApp::spawn().await;
    fake::accept_models(&app.providers, "openai").await;
    let first_secret = "sk-test-first-secret-000012345";
    let body = json!({"provider": "openai", "name": "Prod", "api_key": first_secret});
    let key = id_of(&app.post(&app.llma("provider_keys/"), body).await.expect(201).json());
    let key_path = app.llma(&format!("provider_keys/{key}/"));

    // Update: a new name and a new secret (masks before and after).
    let second_secret = "sk-test-second-secret-00006789";
    app.patch(&key_path, json!({"name": "Prod 2", "api_key": second_secret})).await.expect(200);
    app.post(&format!("{key_path}validate/"), json!({})).await.expect(200);

    // Assign it to an evaluation.
    let evaluation = id_of(&create_evaluation(&app, evaluation_body("Tone")).await);
    app.post(&format!("{key_path}assign/"), json!({"evaluation_ids": [evaluation]})).await.expect(200);

    // The runner finds the key rejected: invalid, by nobody.
    Mock::given(method("POST"))
        .and(path("/openai/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": {"message": "Incorrect API key"}})))
        .mount(&app.providers)
        .await;
    let eval_path = format!("/api/environments/{}/evaluations/{evaluation}/", app.project);
    app.patch(&eval_path, json!({"enabled": true})).await.expect(200);
    capture(&app, "/batch/", &json!({"api_key": app.project_token, "batch": [generation(json!({}))]}))
        .await
        .expect(200);
    wait_until(std::time::Duration::from_secs(60), || async { app.get(&key_path).await.json()["state"] == "invalid" })
        .await;

    // Delete it with a replacement.
    let replacement = app
        .post(
            &app.llma("provider_keys/"),
            json!({"provider": "openai", "name": "Spare", "api_key": "sk-test-spare-0000000000"}),
        )
        .await
        .expect(201)
        .json();
    let replacement = id_of(&replacement);
    let reply = app
        .request(Method::DELETE, &format!("{key_path}?replacement_key_id={replacement}"), Some(&app.admin_key), None)
        .await;
    assert!(reply.status.is_success(), "{}", reply.text);

    // The key's trail, newest first, readable after the delete.
    let page = app.get(&format!("{key_path}activity/")).await.expect(200).json();
    let trail = entries(&page);
    let actions: Vec<&str> = trail.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["deleted", "validated", "assigned", "validated", "updated", "created"], "{page}");
    assert_eq!(page["count"], 6);
    let [deleted, invalidated, assigned, validated, updated, created] = trail.as_slice() else { unreachable!() };
    assert_eq!(created["actor"]["email"], "admin@example.com");
    assert_eq!(change(created, "api_key")["after"], "sk-t...2345");
    assert_eq!(created["provider_key_name"], "Prod");
    assert_eq!(change(updated, "api_key")["before"], "sk-t...2345");
    assert_eq!(change(updated, "api_key")["after"], "sk-t...6789");
    assert_eq!(
        (change(updated, "name")["before"].clone(), change(updated, "name")["after"].clone()),
        (json!("Prod"), json!("Prod 2"))
    );
    assert_eq!(validated["actor"]["email"], "admin@example.com");
    assert_eq!(change(assigned, "evaluation_ids")["after"], json!([evaluation]));
    assert_eq!(invalidated["actor"], Value::Null, "the runner acts as nobody");
    assert_eq!(
        (change(invalidated, "state")["before"].clone(), change(invalidated, "state")["after"].clone()),
        (json!("ok"), json!("invalid"))
    );
    assert_eq!(change(deleted, "replacement_key_id")["after"], json!(replacement));
    assert_eq!(change(deleted, "configurations_moved")["after"], 1);
    assert_eq!(deleted["provider_key_name"], "Prod 2");

    // The project's trail holds both keys; no secret anywhere.
    let all = app.get(&app.llma("provider_keys/activity/")).await.expect(200).json();
    assert_eq!(all["count"], 7);
    let text = all.to_string();
    for secret in [first_secret, second_secret, "sk-test-spare-0000000000"] {
        assert!(!text.contains(secret), "{secret} leaked into the trail");
    }

    // Unknown keys, other projects, scopes.
    app.get(&app.llma(&format!("provider_keys/{}/activity/", uuid::Uuid::now_v7()))).await.expect(404);
    let (other, other_key) = other_project(&app);
    let foreign = format!("/api/environments/{other}/llm_analytics/provider_keys/{key}/activity/");
    let reply = app.request(Method::GET, &foreign, Some(&other_key), None).await;
    assert_eq!(reply.expect(404).status.as_u16(), 404);
    let foreign_all = format!("/api/environments/{other}/llm_analytics/provider_keys/activity/");
    assert_eq!(app.request(Method::GET, &foreign_all, Some(&other_key), None).await.expect(200).json()["count"], 0);
    let reader = app.user_with_key("reader@example.com", Some((app.project, "member")), "llm_provider_key:read", None);
    app.request(Method::GET, &app.llma("provider_keys/activity/"), Some(&reader), None).await.expect(200);
    let none = app.user_with_key("none@example.com", Some((app.project, "member")), "evaluation:read", None);
    app.request(Method::GET, &app.llma("provider_keys/activity/"), Some(&none), None).await.expect(403);
}
