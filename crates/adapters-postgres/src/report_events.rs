//! The evaluation results a report reads (`ReportEvents`): counts of a period, the trend,
//! a sample, the N-th newest. All on the `(project_id, evaluation_id, timestamp)` index.
//! The statements are exported so the bench times exactly these.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::reports::content::SampledRun;
use domain::reports::render::chart::Bucket;
use domain::reports::{EvaluationPeriod, NewResults, Period, ReportEvents, ResultCounts, TrendPoint};
use domain::summary::{EvaluationRun, RunResult};
use domain::{EvaluationId, ProjectId, RepositoryError};
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

/// A result's class (na = applicable false; pass / fail = result true / false).
macro_rules! result_class {
    () => {
        "CASE WHEN e.properties -> '$ai_evaluation_applicable' = 'false'::jsonb THEN 'na' \
              WHEN e.properties -> '$ai_evaluation_result' = 'true'::jsonb THEN 'pass' \
              WHEN e.properties -> '$ai_evaluation_result' = 'false'::jsonb THEN 'fail' END"
    };
}

/// Pass / fail / n/a of one evaluation in [$3, $4) — a report's metrics, run for the
/// period and the previous one.
pub const PERIOD_COUNTS: &str = concat!(
    "SELECT count(*) FILTER (WHERE result = 'pass') AS pass, count(*) FILTER (WHERE result = 'fail') AS fail, \
            count(*) FILTER (WHERE result = 'na') AS na \
     FROM (SELECT ",
    result_class!(),
    " AS result FROM ai_events e \
       WHERE e.project_id = $1 AND e.evaluation_id = $2 AND e.event = '$ai_evaluation' \
         AND e.timestamp >= $3 AND e.timestamp < $4) c"
);

/// Pass / fail per UTC bucket ($5: hour | day) in [$3, $4).
pub const TREND: &str = concat!(
    "SELECT date_trunc($5, timestamp, 'UTC') AS bucket, count(*) FILTER (WHERE result = 'pass') AS pass, \
            count(*) FILTER (WHERE result = 'fail') AS fail \
     FROM (SELECT e.timestamp, ",
    result_class!(),
    " AS result FROM ai_events e \
       WHERE e.project_id = $1 AND e.evaluation_id = $2 AND e.event = '$ai_evaluation' \
         AND e.timestamp >= $3 AND e.timestamp < $4) c \
     GROUP BY 1 ORDER BY 1"
);

/// The newest $5 runs of [$3, $4).
pub const SAMPLE: &str = concat!(
    "SELECT uuid, target_event_id, trace_id, timestamp, reasoning, result FROM ( \
       SELECT e.uuid, e.target_event_id, e.trace_id, e.timestamp, \
              coalesce(e.properties ->> '$ai_evaluation_reasoning', '') AS reasoning, ",
    result_class!(),
    " AS result FROM ai_events e \
       WHERE e.project_id = $1 AND e.evaluation_id = $2 AND e.event = '$ai_evaluation' \
         AND e.timestamp >= $3 AND e.timestamp < $4 \
       ORDER BY e.timestamp DESC, e.uuid DESC LIMIT $5) s \
     WHERE result IS NOT NULL"
);

/// The timestamp of the $4-th newest result before $3 (of the oldest when there are
/// fewer; NULL when there are none).
pub const NTH_NEWEST: &str = "\
SELECT min(timestamp) FROM (
    SELECT e.timestamp FROM ai_events e
    WHERE e.project_id = $1 AND e.evaluation_id = $2 AND e.event = '$ai_evaluation' AND e.timestamp < $3
    ORDER BY e.timestamp DESC LIMIT $4) newest";

/// For each ($1, $2, $3, $4, $5)[i]: results after $3 and up to $4 included, counted up
/// to $5 (an index probe that stops there), in the order given.
pub const NEW_RESULTS: &str = "\
SELECT (SELECT count(*) FROM (
          SELECT 1 FROM ai_events e
          WHERE e.project_id = q.project_id AND e.evaluation_id = q.evaluation_id AND e.event = '$ai_evaluation'
            AND e.timestamp > q.after AND e.timestamp <= q.until
          LIMIT q.up_to) n) AS found
FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::bigint[])
     WITH ORDINALITY AS q(project_id, evaluation_id, after, until, up_to, position)
ORDER BY q.position";

/// For each ($1, $2, $3, $4)[i]: pass / fail / n/a in [$3, $4), in the order given.
pub const COUNTS_OF_PERIODS: &str = concat!(
    "SELECT c.pass, c.fail, c.na \
     FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::timestamptz[]) \
          WITH ORDINALITY AS q(project_id, evaluation_id, start_at, end_at, position) \
     CROSS JOIN LATERAL ( \
       SELECT count(*) FILTER (WHERE result = 'pass') AS pass, count(*) FILTER (WHERE result = 'fail') AS fail, \
              count(*) FILTER (WHERE result = 'na') AS na \
       FROM (SELECT ",
    result_class!(),
    " AS result FROM ai_events e \
         WHERE e.project_id = q.project_id AND e.evaluation_id = q.evaluation_id AND e.event = '$ai_evaluation' \
           AND e.timestamp >= q.start_at AND e.timestamp < q.end_at) r) c \
     ORDER BY q.position"
);

/// Report reads over `ai_events`.
#[derive(Clone)]
pub struct PgReportEvents {
    pool: PgPool,
}

impl PgReportEvents {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[derive(FromRow)]
struct CountsRow {
    pass: i64,
    fail: i64,
    na: i64,
}

#[derive(FromRow)]
struct TrendRow {
    bucket: DateTime<Utc>,
    pass: i64,
    fail: i64,
}

#[derive(FromRow)]
struct SampleRow {
    uuid: Uuid,
    target_event_id: Option<String>,
    trace_id: Option<String>,
    timestamp: DateTime<Utc>,
    reasoning: String,
    result: String,
}

fn unsigned(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

#[async_trait]
impl ReportEvents for PgReportEvents {
    async fn counts(
        &self,
        project: ProjectId,
        evaluation: EvaluationId,
        period: Period,
    ) -> Result<ResultCounts, RepositoryError> {
        let row: CountsRow = sqlx::query_as(PERIOD_COUNTS)
            .bind(project.0)
            .bind(evaluation.to_string())
            .bind(period.start)
            .bind(period.end)
            .fetch_one(&self.pool)
            .await
            .map_err(RepositoryError::new)?;
        Ok(ResultCounts { pass: unsigned(row.pass), fail: unsigned(row.fail), na: unsigned(row.na) })
    }

    async fn new_results(&self, queries: &[NewResults]) -> Result<Vec<u64>, RepositoryError> {
        let found: Vec<i64> = sqlx::query_scalar(NEW_RESULTS)
            .bind(queries.iter().map(|q| q.project.0).collect::<Vec<_>>())
            .bind(queries.iter().map(|q| q.evaluation.to_string()).collect::<Vec<_>>())
            .bind(queries.iter().map(|q| q.after).collect::<Vec<_>>())
            .bind(queries.iter().map(|q| q.until).collect::<Vec<_>>())
            .bind(queries.iter().map(|q| i64::from(q.up_to)).collect::<Vec<_>>())
            .fetch_all(&self.pool)
            .await
            .map_err(RepositoryError::new)?;
        Ok(found.into_iter().map(unsigned).collect())
    }

    async fn counts_of_periods(&self, periods: &[EvaluationPeriod]) -> Result<Vec<ResultCounts>, RepositoryError> {
        let rows: Vec<CountsRow> = sqlx::query_as(COUNTS_OF_PERIODS)
            .bind(periods.iter().map(|p| p.project.0).collect::<Vec<_>>())
            .bind(periods.iter().map(|p| p.evaluation.to_string()).collect::<Vec<_>>())
            .bind(periods.iter().map(|p| p.period.start).collect::<Vec<_>>())
            .bind(periods.iter().map(|p| p.period.end).collect::<Vec<_>>())
            .fetch_all(&self.pool)
            .await
            .map_err(RepositoryError::new)?;
        Ok(rows
            .into_iter()
            .map(|r| ResultCounts { pass: unsigned(r.pass), fail: unsigned(r.fail), na: unsigned(r.na) })
            .collect())
    }

    async fn trend(
        &self,
        project: ProjectId,
        evaluation: EvaluationId,
        span: Period,
        bucket: Bucket,
    ) -> Result<Vec<TrendPoint>, RepositoryError> {
        let rows: Vec<TrendRow> = sqlx::query_as(TREND)
            .bind(project.0)
            .bind(evaluation.to_string())
            .bind(span.start)
            .bind(span.end)
            .bind(bucket.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(RepositoryError::new)?;
        Ok(rows
            .into_iter()
            .map(|r| TrendPoint { bucket: r.bucket, pass: unsigned(r.pass), fail: unsigned(r.fail) })
            .collect())
    }

    async fn sample(
        &self,
        project: ProjectId,
        evaluation: EvaluationId,
        period: Period,
        limit: u32,
    ) -> Result<Vec<SampledRun>, RepositoryError> {
        let rows: Vec<SampleRow> = sqlx::query_as(SAMPLE)
            .bind(project.0)
            .bind(evaluation.to_string())
            .bind(period.start)
            .bind(period.end)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(RepositoryError::new)?;
        Ok(rows
            .into_iter()
            .map(|row| SampledRun {
                run: EvaluationRun {
                    event: row.uuid,
                    generation_id: row.target_event_id.unwrap_or_default(),
                    result: match row.result.as_str() {
                        "pass" => RunResult::Pass,
                        "fail" => RunResult::Fail,
                        _ => RunResult::Na,
                    },
                    reasoning: row.reasoning,
                    timestamp: row.timestamp,
                },
                trace_id: row.trace_id.unwrap_or_default(),
            })
            .collect())
    }

    async fn nth_newest(
        &self,
        project: ProjectId,
        evaluation: EvaluationId,
        n: u32,
        before: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, RepositoryError> {
        sqlx::query_scalar(NTH_NEWEST)
            .bind(project.0)
            .bind(evaluation.to_string())
            .bind(before)
            .bind(i64::from(n.max(1)))
            .fetch_one(&self.pool)
            .await
            .map_err(RepositoryError::new)
    }
}
