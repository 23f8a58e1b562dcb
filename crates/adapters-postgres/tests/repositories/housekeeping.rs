//! `PgHousekeeping`: what has expired goes, in bounded batches; what is live stays.

use adapters_postgres::PgHousekeeping;
use chrono::{TimeZone, Utc};
use domain::housekeeping::Housekeeping;

use crate::support::TestApp;

async fn count(app: &TestApp, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(app.pool()).await.unwrap()
}

async fn run(app: &TestApp, sql: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())).execute(app.pool()).await.unwrap();
}

#[tokio::test]
async fn a_sweep_deletes_only_what_expired_and_at_most_a_batch_per_step() {
    let app = TestApp::migrated().await;
    let project = app.project().await.id.0;
    run(
        &app,
        &format!(
            "INSERT INTO summary_flights (project_id, cache_key, locked_until) VALUES
                ({project}, 'lapsed-1', now() - interval '1 minute'), ({project}, 'lapsed-2', now() - interval '1 hour'),
                ({project}, 'lapsed-3', now() - interval '2 hours'), ({project}, 'live', now() + interval '1 minute');
             INSERT INTO summary_cache (project_id, cache_key, evaluation_id, summary, created_at) VALUES
                ({project}, 'old', gen_random_uuid(), '{{}}', now() - interval '2 hours'),
                ({project}, 'fresh', gen_random_uuid(), '{{}}', now() - interval '5 minutes');
             INSERT INTO rate_limit_hits (api_key_id, bucket, created_at) VALUES
                (gen_random_uuid(), 'b', now() - interval '2 days'), (gen_random_uuid(), 'b', now() - interval '1 hour');
             INSERT INTO jobs (id, project_id, kind, payload, state, finished_at) VALUES
                (gen_random_uuid(), 0, 'judge', '{{}}', 'done', now() - interval '8 days'),
                (gen_random_uuid(), 0, 'judge', '{{}}', 'failed', now() - interval '9 days'),
                (gen_random_uuid(), 0, 'judge', '{{}}', 'done', now() - interval '1 day');
             INSERT INTO jobs (id, project_id, kind, payload) VALUES (gen_random_uuid(), 0, 'judge', '{{}}');"
        ),
    )
    .await;
    let housekeeping = PgHousekeeping::new(app.pool().clone());

    let first = housekeeping.sweep(Utc::now(), 2, None).await.unwrap();
    assert_eq!((first.summary_flights, first.summary_cache, first.rate_limit_hits, first.finished_jobs), (2, 1, 1, 2));
    let second = housekeeping.sweep(Utc::now(), 2, None).await.unwrap();
    assert_eq!((second.summary_flights, second.finished_jobs), (1, 0), "the rest of the lapsed claims");

    assert_eq!(count(&app, "SELECT count(*) FROM summary_flights").await, 1, "the live claim stays");
    assert_eq!(count(&app, "SELECT count(*) FROM summary_cache").await, 1);
    assert_eq!(count(&app, "SELECT count(*) FROM rate_limit_hits").await, 1);
    assert_eq!(count(&app, "SELECT count(*) FROM jobs").await, 2, "the recent and the pending job stay");
}

#[tokio::test]
async fn with_retention_whole_months_past_it_are_dropped_with_their_id_claims() {
    let app = TestApp::migrated().await;
    let project = app.project().await.id.0;
    // Events in January, February and March 2026 (partitions made as ingestion makes them).
    run(
        &app,
        &format!(
            "SELECT ai_events_ensure_partition(m) FROM unnest(ARRAY['2026-01-15', '2026-02-15', '2026-03-15']::timestamptz[]) AS m;
             INSERT INTO ai_event_ids (project_id, uuid, timestamp)
                SELECT {project}, gen_random_uuid(), t FROM unnest(ARRAY['2026-01-10', '2026-01-20', '2026-02-10', '2026-03-10']::timestamptz[]) AS t;
             INSERT INTO ai_events (project_id, uuid, event, distinct_id, timestamp, properties)
                SELECT project_id, uuid, '$ai_generation', 'u', timestamp, '{{}}' FROM ai_event_ids;"
        ),
    )
    .await;
    let housekeeping = PgHousekeeping::new(app.pool().clone());
    // Cutoff 20 February: January is wholly past it; February is not (kept whole).
    let cutoff = Utc.with_ymd_and_hms(2026, 2, 20, 0, 0, 0).unwrap();
    let report = housekeeping.sweep(Utc::now(), 1, Some(cutoff)).await.unwrap();
    assert_eq!(report.event_partitions, 1);
    assert_eq!(report.event_ids, 1, "a batch at a time");
    let report = housekeeping.sweep(Utc::now(), 1, Some(cutoff)).await.unwrap();
    assert_eq!((report.event_partitions, report.event_ids), (0, 1));
    let partitions: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = 'ai_events'::regclass ORDER BY 1",
    )
    .fetch_all(app.pool())
    .await
    .unwrap();
    assert!(!partitions.contains(&"ai_events_p2026_01".to_owned()), "{partitions:?}");
    assert!(
        partitions.contains(&"ai_events_p2026_02".to_owned()) && partitions.contains(&"ai_events_p2026_03".to_owned())
    );
    assert_eq!(count(&app, "SELECT count(*) FROM ai_events").await, 2);
    assert_eq!(count(&app, "SELECT count(*) FROM ai_event_ids").await, 2);

    // Without retention nothing of the events is touched.
    let report = housekeeping.sweep(Utc::now(), 100, None).await.unwrap();
    assert_eq!((report.event_partitions, report.event_ids), (0, 0));
}
