//! The summary's storage: the run query of `PgAiEventStore` (filters, generation ids,
//! newest 250, isolation), `PgSummaryCache` with its single flight, the rate limiter on `PgUnitOfWork`
//! across "replicas", and `PgLlmCallLog`.

use std::time::Duration;

use adapters_postgres::{PgAiEventStore, PgLlmCallLog, PgSummaryCache, PgUnitOfWork};
use chrono::{DateTime, TimeDelta, Utc};
use domain::ingestion::{AiEventName, AiEventStore, IncomingEvent};
use domain::llm::{LlmCallLog, LlmCallOutcome, LlmCallRecord, LlmPurpose};
use domain::provider_key::Provider;
use domain::summary::{
    EvaluationRun, EvaluationSummary, Flight, RateDecision, RateLimit, RateLimiter, RunQuery, RunResult,
    SharedRateLimiter, SummaryCache, SummaryFilter, SummaryKey, SummaryStatistics,
};
use domain::{ApiKeyId, EvaluationId, ProjectId, ProviderKeyId};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::TestApp;

fn evaluation_event(evaluation: EvaluationId, target: Uuid, at: DateTime<Utc>, verdict: Value) -> IncomingEvent {
    let mut properties = json!({
        "$ai_evaluation_id": evaluation.to_string(),
        "$ai_target_event_id": target.to_string(),
        "$ai_evaluation_reasoning": format!("reason for {target}"),
    });
    for (key, value) in verdict.as_object().unwrap() {
        properties[key] = value.clone();
    }
    let Value::Object(properties) = properties else { unreachable!() };
    IncomingEvent {
        uuid: Uuid::now_v7(),
        event: AiEventName::parse("$ai_evaluation").unwrap(),
        distinct_id: "user".into(),
        timestamp: at,
        properties,
    }
}

fn pass() -> Value {
    json!({"$ai_evaluation_result": true})
}
fn fail() -> Value {
    json!({"$ai_evaluation_result": false, "$ai_evaluation_applicable": true})
}
fn na() -> Value {
    json!({"$ai_evaluation_applicable": false})
}

fn ago(seconds: i64) -> DateTime<Utc> {
    Utc::now() - TimeDelta::seconds(seconds)
}

fn query(evaluation: EvaluationId, filter: SummaryFilter) -> RunQuery {
    RunQuery { evaluation, filter, generation_ids: None, limit: 250 }
}

async fn runs(store: &PgAiEventStore, project: ProjectId, query: &RunQuery) -> Vec<EvaluationRun> {
    store.evaluation_runs(project, query).await.expect("run query")
}

#[tokio::test]
async fn runs_are_classified_filtered_and_newest_first() {
    let app = TestApp::migrated().await;
    let store = PgAiEventStore::new(app.pool().clone());
    let project = app.project().await.id;
    let evaluation = EvaluationId::generate();
    let targets: Vec<Uuid> = (0..4).map(|_| Uuid::now_v7()).collect();
    let mut events = vec![
        evaluation_event(evaluation, targets[0], ago(40), pass()),
        evaluation_event(evaluation, targets[1], ago(30), fail()),
        evaluation_event(evaluation, targets[2], ago(20), na()),
        // applicable false wins over a result
        evaluation_event(
            evaluation,
            targets[3],
            ago(10),
            json!({"$ai_evaluation_result": true, "$ai_evaluation_applicable": false}),
        ),
        // neither a result nor N/A: not a run
        evaluation_event(evaluation, Uuid::now_v7(), ago(5), json!({})),
        // another evaluation
        evaluation_event(EvaluationId::generate(), Uuid::now_v7(), ago(5), pass()),
    ];
    // not an evaluation event
    events[5].event = AiEventName::parse("$ai_generation").unwrap();
    events.push(evaluation_event(EvaluationId::generate(), Uuid::now_v7(), ago(5), pass()));
    store.store_events(project, &events).await.unwrap();

    let all = runs(&store, project, &query(evaluation, SummaryFilter::All)).await;
    let seen: Vec<(String, RunResult)> = all.iter().map(|r| (r.generation_id.clone(), r.result)).collect();
    assert_eq!(
        seen,
        vec![
            (targets[3].to_string(), RunResult::Na),
            (targets[2].to_string(), RunResult::Na),
            (targets[1].to_string(), RunResult::Fail),
            (targets[0].to_string(), RunResult::Pass),
        ]
    );
    assert_eq!(all[3].reasoning, format!("reason for {}", targets[0]));
    let only = |filter| {
        let store = store.clone();
        async move {
            runs(&store, project, &query(evaluation, filter))
                .await
                .into_iter()
                .map(|r| r.generation_id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(only(SummaryFilter::Pass).await, vec![targets[0].to_string()]);
    assert_eq!(only(SummaryFilter::Fail).await, vec![targets[1].to_string()]);
    assert_eq!(only(SummaryFilter::Na).await, vec![targets[3].to_string(), targets[2].to_string()]);
}

#[tokio::test]
async fn runs_can_be_limited_to_generation_ids_and_stay_in_their_project() {
    let app = TestApp::migrated().await;
    let store = PgAiEventStore::new(app.pool().clone());
    let (project, other) = (app.project().await.id, app.project().await.id);
    let evaluation = EvaluationId::generate();
    let targets: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
    let events: Vec<IncomingEvent> =
        targets.iter().enumerate().map(|(n, t)| evaluation_event(evaluation, *t, ago(n as i64 + 1), pass())).collect();
    store.store_events(project, &events).await.unwrap();
    store.store_events(other, &[evaluation_event(evaluation, targets[0], ago(1), pass())]).await.unwrap();

    let mut selected = query(evaluation, SummaryFilter::All);
    selected.generation_ids = Some(vec![targets[0], targets[2], Uuid::now_v7()]);
    let ids: Vec<String> = runs(&store, project, &selected).await.into_iter().map(|r| r.generation_id).collect();
    assert_eq!(ids, vec![targets[0].to_string(), targets[2].to_string()]);

    assert_eq!(runs(&store, other, &query(evaluation, SummaryFilter::All)).await.len(), 1);
    assert!(runs(&store, ProjectId(999_999), &query(evaluation, SummaryFilter::All)).await.is_empty());
}

#[tokio::test]
async fn at_most_the_newest_250_runs_are_read() {
    let app = TestApp::migrated().await;
    let store = PgAiEventStore::new(app.pool().clone());
    let project = app.project().await.id;
    let evaluation = EvaluationId::generate();
    let events: Vec<IncomingEvent> =
        (0..260).map(|n| evaluation_event(evaluation, Uuid::now_v7(), ago(1000 - n), pass())).collect();
    store.store_events(project, &events).await.unwrap();

    let read = runs(&store, project, &query(evaluation, SummaryFilter::All)).await;

    assert_eq!(read.len(), 250);
    assert_eq!(read[0].event, events[259].uuid, "newest first");
    assert_eq!(read[249].event, events[10].uuid, "the 10 oldest left out");
}

fn summary(text: &str) -> EvaluationSummary {
    EvaluationSummary {
        overall_assessment: text.into(),
        pass_patterns: Vec::new(),
        fail_patterns: Vec::new(),
        na_patterns: Vec::new(),
        recommendations: vec!["a".into(), "b".into()],
        statistics: SummaryStatistics { total_analyzed: 1, pass_count: 1, fail_count: 0, na_count: 0 },
    }
}

fn cache_key(project: ProjectId, prompt: &str) -> SummaryKey {
    SummaryKey::new(project, EvaluationId::generate(), SummaryFilter::All, &[], prompt)
}

const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn the_cache_answers_fresh_summaries_of_its_key_only() {
    let app = TestApp::migrated().await;
    let cache = PgSummaryCache::new(app.pool().clone());
    let project = app.project().await.id;
    let key = cache_key(project, "prompt");

    assert_eq!(cache.fresh(&key, HOUR).await.unwrap(), None);
    cache.store(&key, &summary("first")).await.unwrap();
    cache.store(&key, &summary("second")).await.unwrap();
    assert_eq!(cache.fresh(&key, HOUR).await.unwrap(), Some(summary("second")));
    assert_eq!(cache.fresh(&cache_key(project, "other prompt"), HOUR).await.unwrap(), None);

    sqlx::query("UPDATE summary_cache SET created_at = now() - interval '61 minutes'")
        .execute(app.pool())
        .await
        .unwrap();
    assert_eq!(cache.fresh(&key, HOUR).await.unwrap(), None, "older than the ttl");
}

#[tokio::test]
async fn one_request_leads_a_key_while_others_wait_for_its_result() {
    let app = TestApp::migrated().await;
    let (first, second) = (PgSummaryCache::new(app.pool().clone()), PgSummaryCache::new(app.pool().clone()));
    let project = app.project().await.id;
    let key = cache_key(project, "prompt");
    let since = Utc::now() - TimeDelta::hours(1);

    let Flight::Leader(token) = first.begin(&key, HOUR, Duration::ZERO, HOUR, since).await.unwrap() else {
        panic!("the first request leads")
    };
    assert_eq!(
        second.begin(&key, HOUR, Duration::from_millis(100), HOUR, since).await.unwrap(),
        Flight::GaveUp,
        "the lease is held"
    );

    let waiter = {
        let (second, key) = (second.clone(), key.clone());
        tokio::spawn(async move { second.begin(&key, HOUR, Duration::from_secs(20), HOUR, since).await })
    };
    first.store(&key, &summary("computed once")).await.unwrap();
    first.release(&key, token).await.unwrap();
    assert_eq!(waiter.await.unwrap().unwrap(), Flight::Done(Box::new(summary("computed once"))));

    // A forced refresh does not accept what was there before it started.
    let after = Utc::now() + TimeDelta::seconds(1);
    assert!(matches!(second.begin(&key, HOUR, Duration::ZERO, HOUR, after).await.unwrap(), Flight::Leader(_)));
}

#[tokio::test]
async fn an_expired_lease_is_taken_over() {
    let app = TestApp::migrated().await;
    let cache = PgSummaryCache::new(app.pool().clone());
    let key = cache_key(app.project().await.id, "prompt");
    let since = Utc::now() - TimeDelta::hours(1);

    let Flight::Leader(slow) = cache.begin(&key, Duration::from_millis(1), Duration::ZERO, HOUR, since).await.unwrap()
    else {
        panic!("the first request leads")
    };
    sqlx::query("UPDATE summary_flights SET locked_until = now() - interval '1 second'")
        .execute(app.pool())
        .await
        .unwrap();
    let Flight::Leader(next) = cache.begin(&key, HOUR, Duration::ZERO, HOUR, since).await.unwrap() else {
        panic!("the lapsed lease is taken over")
    };
    assert_ne!(slow, next);

    // The slow holder finishes late: its release must leave the new holder's claim alone.
    cache.release(&key, slow).await.unwrap();
    assert_eq!(
        cache.begin(&key, HOUR, Duration::ZERO, HOUR, since).await.unwrap(),
        Flight::GaveUp,
        "the next holder still holds the key"
    );
    cache.release(&key, next).await.unwrap();
    assert!(matches!(cache.begin(&key, HOUR, Duration::ZERO, HOUR, since).await.unwrap(), Flight::Leader(_)));
}

static THREE_PER_MINUTE: [RateLimit; 2] =
    [RateLimit { window: Duration::from_secs(60), max: 3 }, RateLimit { window: Duration::from_secs(3600), max: 100 }];

static FIVE_PER_HOUR: [RateLimit; 1] = [RateLimit { window: Duration::from_secs(3600), max: 5 }];

#[tokio::test]
async fn a_full_window_refuses_until_its_oldest_request_leaves_it() {
    let app = TestApp::migrated().await;
    let limiter =
        SharedRateLimiter::new(std::sync::Arc::new(PgUnitOfWork::new(&PgAiEventStore::new(app.pool().clone()))));
    let key = ApiKeyId(Uuid::now_v7());

    for _ in 0..3 {
        assert_eq!(limiter.acquire("test", key, &THREE_PER_MINUTE).await.unwrap(), RateDecision::Allowed);
    }
    // The oldest counted request was 20 seconds ago: it leaves the minute in ~40 s.
    sqlx::query(
        "UPDATE rate_limit_hits SET created_at = now() - interval '20 seconds' \
         WHERE created_at = (SELECT min(created_at) FROM rate_limit_hits)",
    )
    .execute(app.pool())
    .await
    .unwrap();
    let RateDecision::Limited { retry_after } = limiter.acquire("test", key, &THREE_PER_MINUTE).await.unwrap() else {
        panic!("the fourth request in a minute is refused");
    };
    assert!(retry_after > Duration::from_secs(38) && retry_after <= Duration::from_secs(40), "{retry_after:?}");

    assert_eq!(
        limiter.acquire("test", ApiKeyId(Uuid::now_v7()), &THREE_PER_MINUTE).await.unwrap(),
        RateDecision::Allowed,
        "another key has its own counts"
    );
    assert_eq!(limiter.acquire("other", key, &THREE_PER_MINUTE).await.unwrap(), RateDecision::Allowed);

    sqlx::query("UPDATE rate_limit_hits SET created_at = created_at - interval '1 minute'")
        .execute(app.pool())
        .await
        .unwrap();
    assert_eq!(limiter.acquire("test", key, &THREE_PER_MINUTE).await.unwrap(), RateDecision::Allowed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_share_the_counts_and_never_over_admit() {
    let app = TestApp::migrated().await;
    let key = ApiKeyId(Uuid::now_v7());
    // Every attempt waits at the barrier, so all of them are in flight together on
    // threads of their own: a count read and then written would over-admit here.
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(12));
    let attempts: Vec<_> = (0..12)
        .map(|_| {
            let limiter = SharedRateLimiter::new(std::sync::Arc::new(PgUnitOfWork::new(&PgAiEventStore::new(
                app.pool().clone(),
            ))));
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                limiter.acquire("test", key, &FIVE_PER_HOUR).await.unwrap()
            })
        })
        .collect();
    let mut allowed = 0;
    for attempt in attempts {
        if attempt.await.unwrap() == RateDecision::Allowed {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 5);
}

/// project, purpose, provider, model, key, tokens in, tokens out, latency, outcome.
type CallRow = (i64, String, String, String, Option<Uuid>, i64, i64, i64, String);

#[tokio::test]
async fn llm_calls_are_recorded_with_their_cost() {
    let app = TestApp::migrated().await;
    let log = PgLlmCallLog::new(app.pool().clone());
    let project = app.project().await.id;
    let key = ProviderKeyId(Uuid::now_v7());
    let call = |key, outcome, cost| LlmCallRecord {
        project,
        purpose: LlmPurpose::Summary,
        provider: Provider::Openai,
        model: "gpt-5-mini".into(),
        key,
        input_tokens: 1200,
        output_tokens: 300,
        latency_ms: 850,
        outcome,
        cost,
    };
    let priced = Some((0.0009, domain::cost::CostSource::Table));
    log.record(&call(Some(key), LlmCallOutcome::Ok, priced)).await.unwrap();
    log.record(&call(None, LlmCallOutcome::Timeout, None)).await.unwrap();
    let costs: Vec<(Option<f64>, Option<String>)> =
        sqlx::query_as("SELECT cost_usd, cost_source FROM llm_calls ORDER BY id").fetch_all(app.pool()).await.unwrap();
    assert_eq!(costs, vec![(Some(0.0009), Some("table".to_owned())), (None, None)]);

    let rows: Vec<CallRow> = sqlx::query_as(
        "SELECT project_id, purpose, provider, model, provider_key_id, input_tokens, output_tokens, latency_ms, \
         outcome FROM llm_calls ORDER BY id",
    )
    .fetch_all(app.pool())
    .await
    .unwrap();
    assert_eq!(
        rows,
        vec![
            (
                project.0,
                "summary".into(),
                "openai".into(),
                "gpt-5-mini".into(),
                Some(key.0),
                1200,
                300,
                850,
                "ok".into()
            ),
            (project.0, "summary".into(), "openai".into(), "gpt-5-mini".into(), None, 1200, 300, 850, "timeout".into()),
        ]
    );
}
