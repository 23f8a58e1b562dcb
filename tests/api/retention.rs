//! Spec section 10, `LLMA_EVENT_RETENTION_DAYS`: capture answers events older than the
//! window as if stored and keeps nothing of them; such an event can no longer be judged
//! by a manual run (the reference's 404).

use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

use crate::evaluations::{create_evaluation, evaluation_body, id_of};
use crate::helpers::*;
use crate::ingestion::{capture, sdk_event, stored_events};

#[tokio::test]
async fn events_past_retention_are_answered_but_not_kept_and_cannot_be_judged() {
    let app = TestApp::spawn_with(&[("LLMA_EVENT_RETENTION_DAYS", "30")]).await;
    let mut old = sdk_event("$ai_generation", json!({"$ai_model": "m"}));
    old["timestamp"] = json!((chrono::Utc::now() - chrono::Duration::days(40)).to_rfc3339());
    let recent = sdk_event("$ai_generation", json!({"$ai_model": "m"}));
    let reply = capture(&app, "/batch/", &json!({"api_key": app.project_token, "batch": [old, recent]})).await;
    assert_eq!(reply.expect(200).json(), json!({"status": 1}));
    assert_eq!(stored_events(&app).await, 1, "only the recent event is kept");

    // An event stored before retention was set (or older than it in a kept month).
    let evaluation = id_of(&create_evaluation(&app, evaluation_body("Tone")).await);
    let stale = Uuid::now_v7();
    let at = chrono::Utc::now() - chrono::Duration::days(45);
    sqlx::query("SELECT ai_events_ensure_partition($1)").bind(at).execute(&app.db.pool).await.unwrap();
    sqlx::query(
        "WITH claimed AS (INSERT INTO ai_event_ids (project_id, uuid, timestamp) VALUES ($1, $2, $3) RETURNING *) \
         INSERT INTO ai_events (project_id, uuid, event, distinct_id, timestamp, properties) \
         SELECT project_id, uuid, '$ai_generation', 'u', timestamp, '{}' FROM claimed",
    )
    .bind(app.project)
    .bind(stale)
    .bind(at)
    .execute(&app.db.pool)
    .await
    .unwrap();
    let runs = format!("/api/environments/{}/evaluation_runs/", app.project);
    let body = json!({"evaluation_id": evaluation, "target_event_id": stale});
    let reply = app.request(Method::POST, &runs, Some(&app.admin_key), Some(body)).await;
    assert_eq!(
        reply.expect(404).json(),
        json!({"error": format!("Event {stale} is past the ai_events retention window and can no longer be evaluated")})
    );
}
