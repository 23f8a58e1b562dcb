//! Spec section 0 (Values): a NUL character (U+0000) in any string of any request body or
//! query is a 400 naming the field — never a 5xx. Driven by the OpenAPI document: every
//! operation, every string field of its body (nested ones too) and every string query
//! parameter gets a NUL, one request each. Capture stores NULs as U+FFFD instead.

use reqwest::Method;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::helpers::*;
use crate::ingestion::capture;

const NUL_TEXT: &str = "a\u{0}b";

/// Resolves `{"$ref": "#/components/schemas/X"}` (and `oneOf`/`allOf` of one ref).
fn resolve<'a>(schema: &'a Value, doc: &'a Value) -> &'a Value {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.rsplit('/').next().unwrap_or_default();
        return resolve(&doc["components"]["schemas"][name], doc);
    }
    for combinator in ["oneOf", "allOf", "anyOf"] {
        if let Some(first) = schema
            .get(combinator)
            .and_then(Value::as_array)
            .and_then(|options| options.iter().find(|o| o.get("type") != Some(&json!("null"))))
        {
            return resolve(first, doc);
        }
    }
    schema
}

fn is_type(schema: &Value, name: &str) -> bool {
    match schema.get("type") {
        Some(Value::String(kind)) => kind == name,
        Some(Value::Array(kinds)) => kinds.iter().any(|k| k == name),
        _ => false,
    }
}

/// Bodies that each put the NUL text in one string field (at any depth ≤ 4), as JSON
/// values, with the field's path.
fn nul_bodies(schema: &Value, doc: &Value, depth: usize) -> Vec<(String, Value)> {
    let schema = resolve(schema, doc);
    if depth > 4 {
        return Vec::new();
    }
    if is_type(schema, "string") {
        return vec![(String::new(), json!(NUL_TEXT))];
    }
    if is_type(schema, "array") {
        return nul_bodies(&schema["items"], doc, depth + 1)
            .into_iter()
            .map(|(path, value)| (format!("[0]{path}"), json!([value])))
            .collect();
    }
    let mut bodies = Vec::new();
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (name, property) in properties {
            for (path, value) in nul_bodies(property, doc, depth + 1) {
                let mut object = Map::new();
                object.insert(name.clone(), value);
                let path = if path.starts_with('[') || path.is_empty() {
                    format!("{name}{path}")
                } else {
                    format!("{name}.{path}")
                };
                bodies.push((path, Value::Object(object)));
            }
        }
    }
    if schema.get("type").is_none() && schema.get("properties").is_none() && depth > 0 {
        // A free-form value (e.g. a filter's `value`): a string is a valid choice.
        bodies.push((String::new(), json!(NUL_TEXT)));
    }
    bodies
}

fn concrete_path(template: &str, project: i64) -> String {
    template.replace("{project_id}", &project.to_string()).replace("{id}", &Uuid::now_v7().to_string())
}

#[tokio::test]
async fn a_nul_in_any_string_of_any_operation_is_never_a_server_error() {
    let app = TestApp::spawn().await;
    let doc = app.request(Method::GET, "/api/schema/", None, None).await.expect(200).json();
    let mut requests = 0;
    let mut refused_with_attr = 0;
    for (template, operations) in doc["paths"].as_object().unwrap() {
        for (verb, operation) in operations.as_object().unwrap() {
            let Ok(method) = verb.to_uppercase().parse::<Method>() else { continue };
            let path = concrete_path(template, app.project);
            let mut cases: Vec<(String, String, Option<Value>)> = Vec::new();
            for parameter in operation["parameters"].as_array().cloned().unwrap_or_default() {
                if parameter["in"] == "query" {
                    let name = parameter["name"].as_str().unwrap().to_owned();
                    let query = format!("{path}?{name}=a%00b");
                    cases.push((name, query, None));
                }
            }
            if let Some(schema) = operation["requestBody"]["content"]["application/json"].get("schema") {
                for (field, body) in nul_bodies(schema, &doc, 0) {
                    cases.push((field, path.clone(), Some(body)));
                }
            }
            for (field, url, body) in cases {
                let reply = app.request(method.clone(), &url, Some(&app.admin_key), body.clone()).await;
                requests += 1;
                assert!(
                    reply.status.as_u16() < 500,
                    "{verb} {template} with a NUL in `{field}` answered {}: {}",
                    reply.status,
                    reply.text
                );
                if reply.status.as_u16() == 400 && reply.text.contains("U+0000") {
                    refused_with_attr += 1;
                }
            }
        }
    }
    assert!(requests > 60, "the document's operations were exercised ({requests} requests)");
    assert!(refused_with_attr > 40, "NULs are refused with the NUL message ({refused_with_attr} of {requests})");
}

#[tokio::test]
async fn the_refusal_names_the_field_and_stores_nothing() {
    let app = TestApp::spawn().await;
    crate::helpers::fake::accept_models(&app.providers, "openai").await;
    let reply = app
        .post(
            &app.llma("provider_keys/"),
            json!({"provider": "openai", "name": NUL_TEXT, "api_key": "sk-test-1234567890"}),
        )
        .await
        .expect(400)
        .json();
    assert_eq!((reply["type"].clone(), reply["attr"].clone()), (json!("validation_error"), json!("name")));
    let keys = app.get(&app.llma("provider_keys/")).await.expect(200).json();
    assert_eq!(keys["count"], 0);

    let body = json!({"name": "ok", "evaluation_config": {"prompt": "fine"},
                      "conditions": [{"properties": [{"key": "env", "value": NUL_TEXT}]}]});
    let reply = app.post(&format!("/api/environments/{}/evaluations/", app.project), body).await.expect(400).json();
    assert_eq!(reply["attr"], "conditions[0].properties[0].value");

    let reply = app.get(&app.llma("models/?provider=open%00ai")).await.expect(400).json();
    assert_eq!(reply["attr"], "provider");
}

#[tokio::test]
async fn captured_events_keep_their_nul_as_a_replacement_character() {
    let app = TestApp::spawn().await;
    let event = json!({"event": "$ai_generation", "distinct_id": "u", "uuid": Uuid::now_v7().to_string(),
                       "properties": {"$ai_input": NUL_TEXT}});
    capture(&app, "/batch/", &json!({"api_key": app.project_token, "batch": [event]})).await.expect(200);
    let stored: String = sqlx::query_scalar("SELECT properties ->> '$ai_input' FROM ai_events WHERE project_id = $1")
        .bind(app.project)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(stored, "a\u{FFFD}b");
}
