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
    // No sweep: the event put in place 45 days back must stay while the manual run is
    // asked (on most days its month is wholly past retention, and a sweep at start-up
    // could drop its partition between the partition's creation and the insert).
    let app =
        TestApp::spawn_with(&[("LLMA_EVENT_RETENTION_DAYS", "30"), ("LLMA_HOUSEKEEPING_INTERVAL_SECS", "0")]).await;
    let mut old = sdk_event("$ai_generation", json!({"$ai_model": "m"}));
    old["timestamp"] = json!((chrono::Utc::now() - chrono::Duration::days(40)).to_rfc3339());
    let recent = sdk_event("$ai_generation", json!({"$ai_model": "m"}));
    let reply = capture(&app, "/batch/", &json!({"api_key": app.project_token, "batch": [old, recent]})).await;
    assert_eq!(reply.expect(200).json(), json!({"status": 1}));
    assert_eq!(stored_events(&app).await, 1, "only the recent event is kept");

    // An event stored before retention was set (or older than it in a kept month).
    let evaluation = id_of(&create_evaluation(&app, evaluation_body("Tone")).await);
    let stale = stored_at(&app, chrono::Utc::now() - chrono::Duration::days(45)).await;
    let runs = format!("/api/environments/{}/evaluation_runs/", app.project);
    let body = json!({"evaluation_id": evaluation, "target_event_id": stale});
    let reply = app.request(Method::POST, &runs, Some(&app.admin_key), Some(body)).await;
    assert_eq!(
        reply.expect(404).json(),
        json!({"error": format!("Event {stale} is past the ai_events retention window and can no longer be evaluated")})
    );
}

/// Stores one `$ai_generation` at `at` the way ingestion does (its partition, its id claim).
async fn stored_at(app: &TestApp, at: chrono::DateTime<chrono::Utc>) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query("SELECT ai_events_ensure_partition($1)").bind(at).execute(&app.db.pool).await.unwrap();
    sqlx::query(
        "WITH claimed AS (INSERT INTO ai_event_ids (project_id, uuid, timestamp) VALUES ($1, $2, $3) RETURNING *) \
         INSERT INTO ai_events (project_id, uuid, event, distinct_id, timestamp, properties) \
         SELECT project_id, uuid, '$ai_generation', 'u', timestamp, '{}' FROM claimed",
    )
    .bind(app.project)
    .bind(id)
    .bind(at)
    .execute(&app.db.pool)
    .await
    .unwrap();
    id
}

async fn partitions(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'ai_events' ORDER BY 1",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn housekeeping_drops_the_months_wholly_past_retention_and_keeps_the_rest() {
    use chrono::Datelike;
    // No sweep while the events are put in place; then one every second.
    let mut app =
        TestApp::spawn_with(&[("LLMA_EVENT_RETENTION_DAYS", "30"), ("LLMA_HOUSEKEEPING_INTERVAL_SECS", "0")]).await;
    let now = chrono::Utc::now();
    // A day in the month four months back: that whole month ended more than 30 days ago.
    let months_back = |n: i32| {
        let month0 = now.year() * 12 + now.month0() as i32 - n;
        chrono::NaiveDate::from_ymd_opt(month0.div_euclid(12), month0.rem_euclid(12) as u32 + 1, 15)
            .unwrap()
            .and_hms_opt(12, 0, 0)
            .unwrap()
            .and_utc()
    };
    let old_month = months_back(4);
    let old_partition = format!("ai_events_p{:04}_{:02}", old_month.year(), old_month.month());
    let old = stored_at(&app, old_month).await;
    let recent = stored_at(&app, now - chrono::Duration::days(1)).await;
    assert!(partitions(&app).await.contains(&old_partition));
    app.set_env("LLMA_HOUSEKEEPING_INTERVAL_SECS", "1");
    app.restart();

    test_support::wait_until(std::time::Duration::from_secs(60), || async {
        !partitions(&app).await.contains(&old_partition)
    })
    .await;

    let ids: Vec<Uuid> =
        sqlx::query_scalar("SELECT uuid FROM ai_events ORDER BY timestamp").fetch_all(&app.db.pool).await.unwrap();
    assert_eq!(ids, [recent], "the old month's event went with its partition; the recent one stays");
    test_support::wait_until(std::time::Duration::from_secs(60), || async {
        let claims: i64 = sqlx::query_scalar("SELECT count(*) FROM ai_event_ids WHERE uuid = $1")
            .bind(old)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
        claims == 0
    })
    .await;
}
