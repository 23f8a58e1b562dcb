//! `AiEventStore` on PostgreSQL: table `ai_events`, partitioned by month, with
//! idempotency claims in `ai_event_ids` (see `migrations/0006_ai_events.sql`).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use chrono::{DateTime, Datelike, Months, TimeZone, Utc};
use domain::ingestion::{AiEventStore, IncomingEvent};
use domain::judge::StoredBatch;
use domain::offline_evaluation::{ExperimentItem, ExperimentItemsQuery};
use domain::summary::{EvaluationRun, RunQuery, RunResult};
use domain::{ProjectId, RepositoryError};
use serde_json::{Map, Value};
use sqlx::types::Json;
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

use crate::fresh_inserts::{FreshInserts, OnExisting};

/// A month, as the first instant of it (UTC): the key of one partition.
type Month = DateTime<Utc>;

fn month_of(instant: DateTime<Utc>) -> Month {
    Utc.with_ymd_and_hms(instant.year(), instant.month(), 1, 0, 0, 0).single().unwrap_or(instant)
}

/// AI events in PostgreSQL.
#[derive(Clone)]
pub struct PgAiEventStore {
    pub(crate) pool: PgPool,
    /// Months whose partition this process knows to exist, so a batch costs no DDL round
    /// trip once its months have been seen.
    known_months: Arc<Mutex<HashSet<Month>>>,
    /// Whether a batch's uuids (and its generations' jobs) are inserted as new.
    fresh: FreshInserts,
}

/// Claims the batch's uuids and inserts the events that were claimed, in one statement
/// (one round trip, one transaction): a uuid the project already has is skipped (with
/// `$on_existing` `ON CONFLICT DO NOTHING`; without it the statement fails, see
/// `fresh_inserts`), a uuid repeated in the batch is stored once, its first occurrence,
/// and if anything fails nothing of the batch is stored. The extracted columns come from
/// the properties here, in one place.
macro_rules! insert_batch {
    ($on_existing:literal, $returning:literal, $select:literal) => {
        concat!(
            "\
WITH input AS (
    SELECT DISTINCT ON (uuid) * FROM UNNEST($2::uuid[], $3::text[], $4::text[], $5::timestamptz[], $6::jsonb[])
        WITH ORDINALITY AS t(uuid, event, distinct_id, timestamp, properties, position)
    ORDER BY uuid, position
),
claimed AS (
    INSERT INTO ai_event_ids (project_id, uuid, timestamp)
    SELECT $1::bigint, uuid, timestamp FROM input
    ",
            $on_existing,
            "
    RETURNING uuid
),
stored AS (
    INSERT INTO ai_events (project_id, uuid, event, distinct_id, timestamp, trace_id, session_id,
                           evaluation_id, target_event_id, experiment_id, experiment_item_id, properties)
    SELECT $1::bigint, i.uuid, i.event, i.distinct_id, i.timestamp,
           ai_property_text(i.properties, '$ai_trace_id'),
           ai_property_text(i.properties, '$ai_session_id'),
           ai_property_text(i.properties, '$ai_evaluation_id'),
           ai_property_text(i.properties, '$ai_target_event_id'),
           ai_property_text(i.properties, '$ai_experiment_id'),
           ai_property_text(i.properties, '$ai_experiment_item_id'),
           i.properties
    FROM input i JOIN claimed c ON c.uuid = i.uuid
    RETURNING ",
            $returning,
            "
)
",
            $select
        )
    };
}

/// The batch statements answering how many events were stored, skipping existing uuids
/// or failing on one.
const INSERT_BATCH: &str =
    insert_batch!("ON CONFLICT (project_id, uuid) DO NOTHING", "1", "SELECT count(*) FROM stored");
const INSERT_NEW_BATCH: &str = insert_batch!("", "1", "SELECT count(*) FROM stored");

/// The batch statements answering the uuids stored (the generations whose judge jobs are
/// queued with them), skipping existing uuids or failing on one.
const INSERT_BATCH_RETURNING_UUIDS: &str =
    insert_batch!("ON CONFLICT (project_id, uuid) DO NOTHING", "uuid", "SELECT uuid FROM stored");
const INSERT_NEW_BATCH_RETURNING_UUIDS: &str = insert_batch!("", "uuid", "SELECT uuid FROM stored");

/// The idempotency claims' key: a batch that expected only new uuids fails on it.
pub(crate) const CLAIMS_KEY: &str = "ai_event_ids_pkey";

/// Creates whichever of the given months' partitions are missing; returns how many it created.
const ENSURE_PARTITIONS: &str = "SELECT count(*) FILTER (WHERE created) FROM unnest($1::timestamptz[]) AS m, ai_events_ensure_partition(m) AS created";

/// The experiment-item columns read from the properties: (output column, property).
/// Each group shows each column's latest non-null value (ClickHouse's `argMax`, which
/// the reference uses, skips nulls the same way).
const ITEM_COLUMNS: [(&str, &str); 11] = [
    ("experiment_item_name", "$ai_experiment_item_name"),
    ("experiment_name", "$ai_experiment_name"),
    ("status", "$ai_status"),
    ("score", "$ai_score"),
    ("score_min", "$ai_score_min"),
    ("score_max", "$ai_score_max"),
    ("result_type", "$ai_result_type"),
    ("reasoning", "$ai_reasoning"),
    ("dataset_id", "$ai_dataset_id"),
    ("dataset_item_id", "$ai_dataset_item_id"),
    ("expected", "$ai_expected"),
];

/// The latest non-null `column` of a group (`ts`, then `uuid`, break ties).
fn latest(column: &str) -> String {
    format!("(array_agg({column} ORDER BY ts DESC, uuid DESC) FILTER (WHERE {column} IS NOT NULL))[1]")
}

/// Section 8 in one statement: the matching evaluations (`src`), their groups with the
/// latest values, newest first and limited (`groups`), the time span of the traced groups
/// (`span`), and the latest input/output of each group's trace within it (`io`, of the
/// results carrying one: those the trace index holds).
pub fn experiment_items_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let src_columns: String = ITEM_COLUMNS
            .iter()
            .map(|(name, key)| format!(",\n           NULLIF(e.properties -> '{key}', 'null'::jsonb) AS {name}"))
            .collect();
        let group_columns: String =
            ITEM_COLUMNS.iter().map(|(name, _)| format!(",\n           {} AS {name}", latest(name))).collect();
        let item_columns: String = ITEM_COLUMNS.iter().map(|(name, _)| format!("g.{name}, ")).collect();
        format!(
            "\
WITH src AS (
    SELECT e.experiment_item_id AS item_id,
           ai_property_text(e.properties, '$ai_metric_name') AS metric_name,
           ai_property_text(e.properties, '$ai_metric_version') AS metric_version,
           e.timestamp AS ts, e.uuid, e.trace_id{src_columns}
    FROM ai_events e
    WHERE e.project_id = $1 AND e.event = '$ai_evaluation' AND e.experiment_id = $2
      AND e.experiment_item_id IS NOT NULL
      AND ($3::timestamptz IS NULL OR e.timestamp >= $3::timestamptz)
      AND ($4::timestamptz IS NULL OR e.timestamp <= $4::timestamptz)
),
groups AS (
    SELECT item_id, metric_name, metric_version,
           {trace} AS trace_id,
           max(ts) AS last_seen_at,
           min(ts) AS first_seen_at{group_columns}
    FROM src
    GROUP BY item_id, metric_name, metric_version
    ORDER BY last_seen_at DESC, item_id, metric_name, metric_version
    LIMIT $5
),
span AS (
    SELECT min(first_seen_at) AS ts_start, max(last_seen_at) AS ts_end FROM groups WHERE trace_id IS NOT NULL
),
io AS (
    SELECT e.trace_id,
           (array_agg(e.properties -> '$ai_input' ORDER BY e.timestamp DESC, e.uuid DESC)
               FILTER (WHERE NULLIF(e.properties -> '$ai_input', 'null'::jsonb) IS NOT NULL))[1] AS input,
           (array_agg(e.properties -> '$ai_output' ORDER BY e.timestamp DESC, e.uuid DESC)
               FILTER (WHERE NULLIF(e.properties -> '$ai_output', 'null'::jsonb) IS NOT NULL))[1] AS output
    FROM ai_events e CROSS JOIN span
    WHERE e.project_id = $1 AND e.event = '$ai_evaluation'
      AND (e.properties ? '$ai_input' OR e.properties ? '$ai_output')
      AND e.trace_id IN (SELECT trace_id FROM groups WHERE trace_id IS NOT NULL)
      AND e.timestamp >= span.ts_start AND e.timestamp <= span.ts_end
    GROUP BY e.trace_id
)
SELECT g.item_id, g.metric_name, g.metric_version, g.trace_id, g.last_seen_at, {item_columns}io.input, io.output
FROM groups g LEFT JOIN io ON io.trace_id = g.trace_id
ORDER BY g.last_seen_at DESC, g.item_id, g.metric_name, g.metric_version",
            trace = latest("trace_id"),
        )
    })
}

#[derive(FromRow)]
struct ItemRow {
    item_id: String,
    metric_name: Option<String>,
    metric_version: Option<String>,
    trace_id: Option<String>,
    last_seen_at: DateTime<Utc>,
    experiment_item_name: Option<Value>,
    experiment_name: Option<Value>,
    status: Option<Value>,
    score: Option<Value>,
    score_min: Option<Value>,
    score_max: Option<Value>,
    result_type: Option<Value>,
    reasoning: Option<Value>,
    dataset_id: Option<Value>,
    dataset_item_id: Option<Value>,
    expected: Option<Value>,
    input: Option<Value>,
    output: Option<Value>,
}

impl From<ItemRow> for ExperimentItem {
    fn from(row: ItemRow) -> Self {
        ExperimentItem {
            item_id: row.item_id,
            experiment_item_name: row.experiment_item_name,
            experiment_name: row.experiment_name,
            metric_name: row.metric_name,
            metric_version: row.metric_version,
            status: row.status,
            score: row.score,
            score_min: row.score_min,
            score_max: row.score_max,
            result_type: row.result_type,
            reasoning: row.reasoning,
            trace_id: row.trace_id,
            dataset_id: row.dataset_id,
            dataset_item_id: row.dataset_item_id,
            input: row.input,
            output: row.output,
            expected: row.expected,
            last_seen_at: row.last_seen_at,
        }
    }
}

/// Whether the insert failed because a row's month has no partition (SQLSTATE 23514 with
/// PostgreSQL's "no partition of relation ... found for row").
pub(crate) fn is_missing_partition(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|db| db.code().as_deref() == Some("23514") && db.message().starts_with("no partition of relation"))
}

impl PgAiEventStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool, known_months: Arc::new(Mutex::new(HashSet::new())), fresh: FreshInserts::new() }
    }

    /// Creates the partitions of `now`'s month and of the `months_ahead` months after it
    /// that are missing; returns how many it created. Run at start-up and daily, so the
    /// months that traffic will reach exist before it does; safe on several replicas at
    /// once.
    pub async fn create_partitions_ahead(&self, now: DateTime<Utc>, months_ahead: u32) -> Result<u64, RepositoryError> {
        let first = month_of(now);
        let months: Vec<Month> = (0..=months_ahead).filter_map(|n| first.checked_add_months(Months::new(n))).collect();
        self.create_partitions(&months).await.map_err(RepositoryError::new)
    }

    /// Creates the partitions of `months` that are missing and remembers them.
    async fn create_partitions(&self, months: &[Month]) -> Result<u64, sqlx::Error> {
        let created: i64 = sqlx::query_scalar(ENSURE_PARTITIONS).bind(months).fetch_one(&self.pool).await?;
        if created > 0 {
            tracing::info!(created, "created ai_events partitions");
        }
        self.known().extend(months.iter().copied());
        Ok(u64::try_from(created).unwrap_or(0))
    }

    pub(crate) fn known(&self) -> std::sync::MutexGuard<'_, HashSet<Month>> {
        // A panic while holding the lock cannot leave the set inconsistent (inserts only).
        self.known_months.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes sure every month the events fall in has its partition. Creating a partition
    /// locks the parent table, so it happens outside the insert's transaction and only
    /// for months this process has not seen yet.
    pub(crate) async fn ensure_partitions_for(&self, events: &[IncomingEvent]) -> Result<(), sqlx::Error> {
        let missing: Vec<Month> = {
            let known = self.known();
            let months: HashSet<Month> = events.iter().map(|event| month_of(event.timestamp)).collect();
            months.into_iter().filter(|month| !known.contains(month)).collect()
        };
        if !missing.is_empty() {
            self.create_partitions(&missing).await?;
        }
        Ok(())
    }

    pub(crate) fn fresh(&self) -> &FreshInserts {
        &self.fresh
    }

    async fn insert(
        &self,
        project: ProjectId,
        columns: &BatchColumns<'_>,
        on_existing: OnExisting,
    ) -> Result<i64, sqlx::Error> {
        let statement = on_existing.statement(INSERT_NEW_BATCH, INSERT_BATCH);
        let mut conn = self.pool.acquire().await?;
        let stored = columns.bind(sqlx::query_scalar(statement), project).fetch_one(&mut *conn).await;
        // A batch statement can be tens of megabytes, and a pooled connection keeps its
        // largest buffer: sixteen of them held ~330 MB after a burst of large batches.
        sqlx::Connection::shrink_buffers(&mut *conn);
        stored
    }
}

pub(crate) async fn insert_returning_uuids(
    conn: &mut sqlx::PgConnection,
    project: ProjectId,
    columns: &BatchColumns<'_>,
    on_existing: OnExisting,
) -> Result<Vec<Uuid>, sqlx::Error> {
    let statement = on_existing.statement(INSERT_NEW_BATCH_RETURNING_UUIDS, INSERT_BATCH_RETURNING_UUIDS);
    columns.bind(sqlx::query_scalar(statement), project).fetch_all(conn).await
}

/// A batch as one array per column, for `UNNEST`, borrowing from the events (the
/// properties are serialised straight from them while the statement is encoded).
pub(crate) struct BatchColumns<'a> {
    uuids: Vec<Uuid>,
    names: Vec<&'a str>,
    distinct_ids: Vec<&'a str>,
    timestamps: Vec<DateTime<Utc>>,
    properties: Vec<Json<&'a Map<String, Value>>>,
}

impl<'a> BatchColumns<'a> {
    /// The batch statement's parameters: the project, then one array per column.
    fn bind<'q, O>(
        &'q self,
        query: sqlx::query::QueryScalar<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
        project: ProjectId,
    ) -> sqlx::query::QueryScalar<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
        query
            .bind(project.0)
            .bind(&self.uuids)
            .bind(&self.names)
            .bind(&self.distinct_ids)
            .bind(&self.timestamps)
            .bind(&self.properties)
    }

    pub(crate) fn of(events: &'a [IncomingEvent]) -> Self {
        let mut columns = BatchColumns {
            uuids: Vec::with_capacity(events.len()),
            names: Vec::with_capacity(events.len()),
            distinct_ids: Vec::with_capacity(events.len()),
            timestamps: Vec::with_capacity(events.len()),
            properties: Vec::with_capacity(events.len()),
        };
        for event in events {
            columns.uuids.push(event.uuid);
            columns.names.push(event.event.as_str());
            columns.distinct_ids.push(&event.distinct_id);
            columns.timestamps.push(event.timestamp);
            columns.properties.push(Json(&event.properties));
        }
        columns
    }
}

#[async_trait]
impl AiEventStore for PgAiEventStore {
    #[tracing::instrument(skip_all, fields(project = %project, events = events.len()))]
    async fn store_events(&self, project: ProjectId, events: &[IncomingEvent]) -> Result<StoredBatch, RepositoryError> {
        if events.is_empty() {
            return Ok(StoredBatch::default());
        }
        self.ensure_partitions_for(events).await.map_err(RepositoryError::new)?;
        let columns = BatchColumns::of(events);
        let mut on_existing = self.fresh.on_existing();
        let mut partitions_repaired = false;
        let stored = loop {
            match self.insert(project, &columns, on_existing).await {
                // A partition this process believed in is gone (dropped by an operator):
                // forget what it knew, create the batch's months again, and retry once.
                Err(error) if !partitions_repaired && is_missing_partition(&error) => {
                    tracing::warn!("an ai_events partition was missing; creating it and retrying the batch");
                    self.known().clear();
                    self.ensure_partitions_for(events).await.map_err(RepositoryError::new)?;
                    partitions_repaired = true;
                }
                // A uuid the project has (a re-sent batch): the statement stored nothing;
                // the tolerant one skips it.
                Err(error) if self.fresh.met_existing_in(&error, on_existing, CLAIMS_KEY) => {
                    on_existing = OnExisting::Skip;
                }
                stored => break stored,
            }
        }
        .map_err(RepositoryError::new)?;
        Ok(StoredBatch { stored: u64::try_from(stored).unwrap_or(0), ..StoredBatch::default() })
    }

    async fn experiment_items(
        &self,
        project: ProjectId,
        query: &ExperimentItemsQuery,
    ) -> Result<Vec<ExperimentItem>, RepositoryError> {
        // Not a cached prepared statement: after five runs PostgreSQL may switch it to a
        // generic plan, whose row estimate ignores how big this experiment is and can turn
        // a sub-second query into a per-group re-sort lasting tens of seconds.
        let rows: Vec<ItemRow> = sqlx::query_as(experiment_items_sql())
            .persistent(false)
            .bind(project.0)
            .bind(query.experiment_id.as_str())
            .bind(query.date_from)
            .bind(query.date_to)
            .bind(i64::from(query.limit))
            .fetch_all(&self.pool)
            .await
            .map_err(RepositoryError::new)?;
        Ok(rows.into_iter().map(ExperimentItem::from).collect())
    }

    async fn evaluation_runs(
        &self,
        project: ProjectId,
        query: &RunQuery,
    ) -> Result<Vec<EvaluationRun>, RepositoryError> {
        let generation_ids: Option<Vec<String>> =
            query.generation_ids.as_ref().map(|ids| ids.iter().map(Uuid::to_string).collect());
        let rows: Vec<RunRow> = sqlx::query_as(EVALUATION_RUNS)
            .bind(project.0)
            .bind(query.evaluation.0.to_string())
            .bind(query.filter.as_str())
            .bind(generation_ids)
            .bind(query.limit)
            .fetch_all(&self.pool)
            .await
            .map_err(RepositoryError::new)?;
        Ok(rows.into_iter().map(EvaluationRun::from).collect())
    }
}

/// Section 6.2: the evaluation's runs, classified (na = applicable false; pass/fail =
/// result true/false otherwise; neither: not a run), filtered, newest first. Uses the
/// `(project_id, evaluation_id, timestamp)` index.
pub const EVALUATION_RUNS: &str = "\
SELECT uuid, target_event_id, timestamp, reasoning, result FROM (
    SELECT e.uuid, e.target_event_id, e.timestamp,
           coalesce(e.properties ->> '$ai_evaluation_reasoning', '') AS reasoning,
           CASE WHEN e.properties -> '$ai_evaluation_applicable' = 'false'::jsonb THEN 'na'
                WHEN e.properties -> '$ai_evaluation_result' = 'true'::jsonb THEN 'pass'
                WHEN e.properties -> '$ai_evaluation_result' = 'false'::jsonb THEN 'fail'
           END AS result
    FROM ai_events e
    WHERE e.project_id = $1 AND e.evaluation_id = $2 AND e.event = '$ai_evaluation'
      AND ($4::text[] IS NULL OR lower(e.target_event_id) = ANY($4::text[]))
) runs
WHERE result IS NOT NULL AND ($3 = 'all' OR result = $3)
ORDER BY timestamp DESC, uuid DESC
LIMIT $5";

#[derive(FromRow)]
struct RunRow {
    uuid: Uuid,
    target_event_id: Option<String>,
    timestamp: DateTime<Utc>,
    reasoning: String,
    result: String,
}

impl From<RunRow> for EvaluationRun {
    fn from(row: RunRow) -> Self {
        let result = match row.result.as_str() {
            "pass" => RunResult::Pass,
            "fail" => RunResult::Fail,
            _ => RunResult::Na,
        };
        EvaluationRun {
            event: row.uuid,
            generation_id: row.target_event_id.unwrap_or_default(),
            result,
            reasoning: row.reasoning,
            timestamp: row.timestamp,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_start_at_midnight_utc_on_the_first() {
        let instant = Utc.with_ymd_and_hms(2024, 2, 29, 23, 59, 59).unwrap();
        assert_eq!(month_of(instant), Utc.with_ymd_and_hms(2024, 2, 1, 0, 0, 0).unwrap());
    }

    #[test]
    fn the_items_query_names_every_column_it_reads() {
        let sql = experiment_items_sql();
        for (name, key) in ITEM_COLUMNS {
            assert!(sql.contains(&format!("AS {name}")), "{name}");
            assert!(sql.contains(key), "{key}");
        }
        assert!(sql.contains("LIMIT $5"));
    }
}
