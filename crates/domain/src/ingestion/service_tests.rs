use crate::ingestion::TokenProblem;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::*;
use crate::ProjectId;
use crate::RepositoryError;
use crate::evaluation::{
    ConditionInput, Conditions, Evaluation, EvaluationState, EvaluationType, MaxRunsPerHour, MockEvaluationRepository,
    OutputType, PropertyFilterInput,
};
use crate::ingestion::{MockBatchWrites, MockProjectTokens, PayloadError};
use crate::jobs::JobKind;
use crate::judge::{JudgePayload, StoredBatch};
use crate::{EvaluationId, ProjectId as Project};

const PROJECT: ProjectId = ProjectId(7);
const TOKEN: &str = "phc_valid_token";

fn now() -> DateTime<Utc> {
    crate::ingestion::parse_iso8601("2026-03-04T12:00:00Z").unwrap()
}

fn tokens() -> MockProjectTokens {
    let mut tokens = MockProjectTokens::new();
    tokens.expect_find_project_by_token().returning(|token| Ok((token == TOKEN).then_some(PROJECT)));
    tokens
}

fn service(tokens: MockProjectTokens, store: MockBatchWrites) -> IngestionService {
    IngestionService::new(Arc::new(tokens), Arc::new(store), Arc::new(no_evaluations()))
}

/// A project without enabled evaluations.
fn no_evaluations() -> MockEvaluationRepository {
    let mut evaluations = MockEvaluationRepository::new();
    evaluations.expect_list_enabled().returning(|_| Ok(Vec::new()));
    evaluations
}

fn judge(id: u128, conditions: Conditions, cap: Option<i64>) -> Evaluation {
    Evaluation {
        id: EvaluationId(Uuid::from_u128(id)),
        project: Project(7),
        name: format!("judge {id}"),
        description: String::new(),
        state: EvaluationState::Active,
        evaluation_type: EvaluationType::LlmJudge,
        prompt: "Is it polite?".into(),
        output_type: OutputType::Boolean,
        conditions,
        model_configuration: None,
        max_runs_per_hour: cap.and_then(MaxRunsPerHour::parse),
        target: crate::evaluation::EvaluationTarget::Generation,
        status_reason_detail: None,
        rate_limited_since: None,
        created_by: None,
        created_at: now(),
        updated_at: now(),
        deleted: false,
    }
}

/// A store that must not be written.
fn untouched_store() -> MockBatchWrites {
    let mut store = MockBatchWrites::new();
    store.expect_store_batch().never();
    store
}

fn event(name: &str) -> Value {
    json!({"event": name, "distinct_id": "user-1", "uuid": Uuid::now_v7().to_string(), "properties": {}})
}

fn body(value: Value) -> Vec<u8> {
    value.to_string().into_bytes()
}

#[tokio::test]
async fn a_missing_token_is_unauthenticated_and_nothing_is_looked_up_or_stored() {
    let mut tokens = MockProjectTokens::new();
    tokens.expect_find_project_by_token().never();
    let service = service(tokens, untouched_store());

    let error = service.ingest(&body(json!({"batch": [event("$ai_generation")]})), now()).await.unwrap_err();

    assert!(matches!(error, IngestError::Unauthenticated(TokenProblem::MissingInBody)));
}

#[tokio::test]
async fn an_unknown_token_is_unauthenticated_and_nothing_is_stored() {
    let service = service(tokens(), untouched_store());

    let error = service
        .ingest(&body(json!({"api_key": "phc_other", "batch": [event("$ai_generation")]})), now())
        .await
        .unwrap_err();

    assert!(matches!(error, IngestError::Unauthenticated(TokenProblem::Unknown)));
}

#[tokio::test]
async fn the_token_is_checked_before_the_events_are_validated() {
    let service = service(tokens(), untouched_store());

    let error = service.ingest(&body(json!({"api_key": "phc_other", "batch": [{"distinct_id": "u"}]})), now()).await;

    assert!(matches!(error, Err(IngestError::Unauthenticated(_))));
}

#[tokio::test]
async fn one_malformed_event_rejects_the_whole_batch_unstored() {
    let service = service(tokens(), untouched_store());
    let mut batch: Vec<Value> = (0..1000).map(|_| event("$ai_generation")).collect();
    batch[3].as_object_mut().unwrap().remove("event");

    let error = service.ingest(&body(json!({"api_key": TOKEN, "batch": batch})), now()).await.unwrap_err();

    match error {
        IngestError::Malformed(PayloadError::Invalid { attr, .. }) => {
            assert_eq!(attr.as_deref(), Some("batch[3].event"))
        }
        other => panic!("expected a malformed batch, got {other:?}"),
    }
}

#[tokio::test]
async fn malformed_json_is_refused_before_any_lookup() {
    let mut tokens = MockProjectTokens::new();
    tokens.expect_find_project_by_token().never();
    let service = service(tokens, untouched_store());

    let error = service.ingest(b"{\"api_key\": ", now()).await.unwrap_err();

    assert!(matches!(error, IngestError::Malformed(PayloadError::Json { .. })));
}

#[tokio::test]
async fn only_ai_events_are_stored_in_the_tokens_project_and_the_rest_counted() {
    let mut store = MockBatchWrites::new();
    store
        .expect_store_batch()
        .withf(|project, events, _, _| {
            *project == PROJECT
                && events.iter().map(|e| e.event.as_str()).collect::<Vec<_>>() == ["$ai_generation", "$ai_evaluation"]
        })
        .times(1)
        .returning(|_, events, _, _| Ok(StoredBatch { stored: events.len() as u64, ..StoredBatch::default() }));
    let service = service(tokens(), store);
    let batch = json!({"api_key": TOKEN, "batch": [
        event("$ai_generation"), event("$pageview"), event("$ai_evaluation"), event("$identify")
    ]});

    let outcome = service.ingest(&body(batch), now()).await.unwrap();

    assert_eq!(outcome, IngestOutcome { stored: 2, duplicates: 0, dropped: 2, unpriced: 0 });
}

#[tokio::test]
async fn a_batch_without_ai_events_touches_no_storage() {
    let service = service(tokens(), untouched_store());

    let outcome =
        service.ingest(&body(json!([{"api_key": TOKEN, "event": "$pageview", "distinct_id": "u"}])), now()).await;

    assert_eq!(outcome.unwrap(), IngestOutcome { stored: 0, duplicates: 0, dropped: 1, unpriced: 0 });
}

#[tokio::test]
async fn repeated_uuids_are_stored_once_and_already_stored_ones_count_as_duplicates() {
    let mut store = MockBatchWrites::new();
    // The store already had one of the two distinct events.
    store
        .expect_store_batch()
        .withf(|_, events, _, _| events.len() == 2)
        .times(1)
        .returning(|_, _, _, _| Ok(StoredBatch { stored: 1, ..StoredBatch::default() }));
    let service = service(tokens(), store);
    let first = event("$ai_span");
    let batch = json!({"api_key": TOKEN, "batch": [first.clone(), first, event("$ai_span")]});

    let outcome = service.ingest(&body(batch), now()).await.unwrap();

    assert_eq!(outcome, IngestOutcome { stored: 1, duplicates: 2, dropped: 0, unpriced: 0 });
}

#[tokio::test]
async fn events_get_their_times_from_the_arrival_and_sent_at() {
    let mut store = MockBatchWrites::new();
    store
        .expect_store_batch()
        .withf(|_, events, _, _| {
            events[0].timestamp == crate::ingestion::parse_iso8601("2026-03-04T11:59:50Z").unwrap()
                && events[1].timestamp == now()
        })
        .times(1)
        .returning(|_, _, _, _| Ok(StoredBatch { stored: 2, ..StoredBatch::default() }));
    let service = service(tokens(), store);
    let mut skewed = event("$ai_span");
    skewed["timestamp"] = json!("2026-03-04T14:59:50Z");
    let batch = json!({"api_key": TOKEN, "sent_at": "2026-03-04T15:00:00Z", "batch": [skewed, event("$ai_span")]});

    service.ingest(&body(batch), now()).await.unwrap();
}

#[tokio::test]
async fn a_storage_failure_is_unexpected() {
    let mut store = MockBatchWrites::new();
    store.expect_store_batch().returning(|_, _, _, _| Err(RepositoryError::new(anyhow::anyhow!("disk full"))));
    let service = service(tokens(), store);

    let error = service.ingest(&body(json!({"api_key": TOKEN, "batch": [event("$ai_trace")]})), now()).await;

    assert!(matches!(error, Err(IngestError::Unexpected(_))));
}

#[tokio::test]
async fn a_matched_generation_brings_one_judge_job_listing_its_evaluations_in_the_same_write() {
    let only_prod = Conditions::parse(&[ConditionInput {
        id: None,
        rollout_percentage: None,
        properties: Some(vec![PropertyFilterInput {
            key: Some("env".into()),
            operator: Some("exact".into()),
            value: Some(json!("prod")),
        }]),
    }])
    .unwrap();
    let mut evaluations = MockEvaluationRepository::new();
    let listed = vec![judge(1, Conditions::default(), Some(5)), judge(2, only_prod, None)];
    evaluations.expect_list_enabled().times(1).returning(move |_| Ok(listed.clone()));
    let mut prod = event("$ai_generation");
    prod["properties"] = json!({"env": "prod"});
    let prod_uuid: Uuid = prod["uuid"].as_str().unwrap().parse().unwrap();
    let staging = event("$ai_generation");
    let mut store = MockBatchWrites::new();
    store
        .expect_store_batch()
        .withf(move |_, events, jobs, _| {
            let payloads: Vec<JudgePayload> =
                jobs.iter().map(|j| serde_json::from_value(j.job.payload.clone()).unwrap()).collect();
            let judged_by_2: Vec<Uuid> = payloads
                .iter()
                .filter(|p| p.evaluations.contains(&EvaluationId(Uuid::from_u128(2))))
                .map(|p| p.generation)
                .collect();
            // one job per matched generation, listing every evaluation it matched
            events.len() == 3
                && jobs.len() == 2
                && jobs.iter().all(|j| j.job.kind == JobKind::Judge && j.job.unique_key.is_some())
                && payloads.iter().all(|p| p.evaluations.contains(&EvaluationId(Uuid::from_u128(1))))
                && judged_by_2 == vec![prod_uuid]
                && jobs.iter().all(|j| j.caps.len() == 1)
        })
        .times(1)
        .returning(|_, _, jobs, _| Ok(StoredBatch { stored: 3, jobs_queued: jobs.len() as u64, skipped_by_cap: 0 }));
    let service = IngestionService::new(Arc::new(tokens()), Arc::new(store), Arc::new(evaluations));
    let batch = json!({"api_key": TOKEN, "batch": [prod, staging, event("$ai_evaluation")]});

    service.ingest(&body(batch), now()).await.unwrap();
}

#[tokio::test]
async fn a_batch_without_generations_does_not_read_evaluations() {
    let mut evaluations = MockEvaluationRepository::new();
    evaluations.expect_list_enabled().never();
    let mut store = MockBatchWrites::new();
    store
        .expect_store_batch()
        .withf(|_, _, jobs, _| jobs.is_empty())
        .returning(|_, _, _, _| Ok(StoredBatch { stored: 1, ..StoredBatch::default() }));
    let service = IngestionService::new(Arc::new(tokens()), Arc::new(store), Arc::new(evaluations));

    service.ingest(&body(json!({"api_key": TOKEN, "batch": [event("$ai_span")]})), now()).await.unwrap();
}

#[tokio::test]
async fn a_token_with_a_nul_is_unknown_without_a_lookup() {
    let mut tokens = MockProjectTokens::new();
    tokens.expect_find_project_by_token().never();
    let service = service(tokens, untouched_store());

    let error = service.ingest(&body(json!({"api_key": "phc_\u{0}", "batch": [event("$ai_span")]})), now()).await;

    assert!(matches!(error, Err(IngestError::Unauthenticated(_))));
}
