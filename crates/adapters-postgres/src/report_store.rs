//! Reports, their runs and deliveries on PostgreSQL (`ReportRepository`,
//! `ReportRunStore`); the event reads of a report are in `report_events.rs`.

use async_trait::async_trait;
use base64::Engine;
use chrono::{DateTime, Utc};
use domain::crypto::SealedSecret;
use domain::reports::delivery::{DeliveryRecord, DeliveryState};
use domain::reports::{
    AlertCondition, DeliveryStatus, DeliveryTarget, Frequency, Period, Report, ReportContent, ReportRepository,
    ReportRun, ReportRunStore, ScheduleCandidate, StoredDelivery, StoredSecret, TrendPoint,
};
use domain::{EvaluationId, Page, PageRequest, ProjectId, ReportId, ReportRunId, RepositoryError, UserId};
use serde_json::{Value, json};
use sqlx::types::Json;
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

/// Reports in `evaluation_reports`, runs in `evaluation_report_runs`, deliveries in
/// `evaluation_report_deliveries`.
#[derive(Clone)]
pub struct PgReportStore {
    pool: PgPool,
}

impl PgReportStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

/// The report columns with the creator; callers add `WHERE`.
macro_rules! select_report {
    () => {
        "SELECT r.id, r.project_id, r.evaluation_id, r.frequency, r.alert_condition, r.rrule, r.starts_at, \
         r.timezone_name, r.next_delivery_date, r.delivery_targets, r.max_sample_size, r.enabled, r.deleted, \
         r.last_delivered_at, r.report_prompt_guidance, r.trigger_threshold, r.cooldown_minutes, r.daily_run_cap, \
         r.created_at, u.id AS user_id, u.uuid AS user_uuid, u.email AS user_email, u.first_name, u.last_name"
    };
}

const INSERT_REPORT: &str = "\
INSERT INTO evaluation_reports (project_id, id, evaluation_id, frequency, alert_condition, rrule, starts_at,
    timezone_name, next_delivery_date, delivery_targets, max_sample_size, enabled, deleted, report_prompt_guidance,
    trigger_threshold, cooldown_minutes, daily_run_cap, created_by, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)";

const SAVE_REPORT: &str = "\
UPDATE evaluation_reports SET evaluation_id = $3, frequency = $4, alert_condition = $5, rrule = $6, starts_at = $7,
    timezone_name = $8, next_delivery_date = $9, delivery_targets = $10, max_sample_size = $11, enabled = $12,
    deleted = $13, report_prompt_guidance = $14, trigger_threshold = $15, cooldown_minutes = $16,
    daily_run_cap = $17, updated_at = now()
WHERE project_id = $1 AND id = $2";

const FIND_REPORT: &str = concat!(
    select_report!(),
    " FROM evaluation_reports r LEFT JOIN users u ON u.id = r.created_by WHERE r.project_id = $1 AND r.id = $2"
);

const LIST_REPORTS: &str = concat!(
    select_report!(),
    " FROM evaluation_reports r LEFT JOIN users u ON u.id = r.created_by \
     WHERE r.project_id = $1 AND NOT r.deleted AND ($2::uuid IS NULL OR r.evaluation_id = $2) \
     ORDER BY r.created_at DESC, r.id LIMIT $3 OFFSET $4"
);

const COUNT_REPORTS: &str = "\
SELECT count(*) FROM evaluation_reports r
WHERE r.project_id = $1 AND NOT r.deleted AND ($2::uuid IS NULL OR r.evaluation_id = $2)";

/// The reports the scheduler looks at (enabled; every every_n and alert one, scheduled
/// ones whose date has come), each with its automatic runs of the last day. Which are due
/// is the domain's decision. Exported for the bench.
pub const SCHEDULE_CANDIDATES: &str = concat!(
    select_report!(),
    ",
    (SELECT count(*) FROM evaluation_report_runs x
      WHERE x.report_id = r.id AND x.automatic AND x.created_at > $1 - interval '1 day') AS runs_last_day
FROM evaluation_reports r
LEFT JOIN users u ON u.id = r.created_by
WHERE r.enabled AND NOT r.deleted AND (r.frequency <> 'scheduled' OR r.next_delivery_date <= $1)
ORDER BY r.next_delivery_date NULLS LAST, r.id"
);

pub(crate) const LOCK_REPORT: &str = "\
SELECT frequency, next_delivery_date, last_delivered_at FROM evaluation_reports WHERE id = $1 FOR UPDATE";

pub(crate) const INSERT_RUN: &str = "\
INSERT INTO evaluation_report_runs (id, project_id, report_id, run_key, automatic, content, metadata, period_start,
    period_end, trend, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (run_key) DO NOTHING";

pub(crate) const ADVANCE_REPORT: &str = "\
UPDATE evaluation_reports
SET last_delivered_at = $2, next_delivery_date = CASE WHEN $3 THEN $4 ELSE next_delivery_date END
WHERE id = $1";

pub(crate) const INSERT_DELIVERIES: &str = "\
INSERT INTO evaluation_report_deliveries (run_id, target_index, recipient, target)
SELECT $1, t.i, t.r, t.target FROM UNNEST($2::int[], $3::text[], $4::jsonb[]) AS t(i, r, target)
ON CONFLICT DO NOTHING";

const SELECT_RUN: &str = "\
SELECT id, project_id, report_id, content, metadata, period_start, period_end, delivery_status, delivery_errors,
       trend, created_at
FROM evaluation_report_runs";

const LIST_RUNS: &str = "\
SELECT id, project_id, report_id, content, metadata, period_start, period_end, delivery_status, delivery_errors,
       trend, created_at
FROM evaluation_report_runs WHERE project_id = $1 AND report_id = $2
ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4";

const COUNT_RUNS: &str = "SELECT count(*) FROM evaluation_report_runs WHERE project_id = $1 AND report_id = $2";

const FIND_DELIVERY: &str = "\
SELECT target_index, recipient, state, error, target FROM evaluation_report_deliveries
WHERE run_id = $1 AND target_index = $2 AND recipient = $3";

pub(crate) const END_DELIVERY: &str = "\
UPDATE evaluation_report_deliveries SET state = $4, error = $5, updated_at = now()
WHERE run_id = $1 AND target_index = $2 AND recipient = $3 AND state = 'pending'";

pub(crate) const RUN_DELIVERIES: &str = "\
SELECT target_index, recipient, state, error, target FROM evaluation_report_deliveries
WHERE run_id = $1 ORDER BY target_index, recipient";

/// Finishing deliveries of one run queue on the run's row, so each recomputes the status
/// from the others' committed ends.
pub(crate) const LOCK_RUN: &str = "SELECT id FROM evaluation_report_runs WHERE id = $1 FOR UPDATE";

pub(crate) const SET_RUN_STATUS: &str = "\
UPDATE evaluation_report_runs SET delivery_status = $2, delivery_errors = $3 WHERE id = $1";

#[derive(FromRow)]
struct ReportRow {
    id: Uuid,
    project_id: i64,
    evaluation_id: Uuid,
    frequency: String,
    alert_condition: Option<Value>,
    rrule: String,
    starts_at: Option<DateTime<Utc>>,
    timezone_name: String,
    next_delivery_date: Option<DateTime<Utc>>,
    delivery_targets: Value,
    max_sample_size: i32,
    enabled: bool,
    deleted: bool,
    last_delivered_at: Option<DateTime<Utc>>,
    report_prompt_guidance: String,
    trigger_threshold: i32,
    cooldown_minutes: i32,
    daily_run_cap: i32,
    created_at: DateTime<Utc>,
    #[sqlx(flatten)]
    user: crate::user_columns::UserColumns,
}

#[derive(FromRow)]
struct CandidateRow {
    #[sqlx(flatten)]
    report: ReportRow,
    runs_last_day: i64,
}

fn unsigned(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn corrupt(what: &str, id: Uuid) -> RepositoryError {
    RepositoryError::new(anyhow::anyhow!("report {id} has an invalid stored {what}"))
}

/// A target as stored: a webhook's secret sealed (base64) beside its mask.
pub(crate) fn target_to_json(target: &DeliveryTarget) -> Value {
    match target {
        DeliveryTarget::Email { addresses } => json!({"type": "email", "value": addresses.join(", ")}),
        DeliveryTarget::Slack { channel, webhook_url, integration_id } => json!({
            "type": "slack", "channel": channel, "webhook_url": webhook_url, "integration_id": integration_id
        }),
        DeliveryTarget::Webhook { url, secret } => json!({
            "type": "webhook", "url": url,
            "secret_sealed": base64::engine::general_purpose::STANDARD.encode(&secret.sealed.0),
            "secret_masked": secret.masked,
        }),
    }
}

fn target_from_json(value: &Value) -> Option<DeliveryTarget> {
    let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
    match value.get("type")?.as_str()? {
        "email" => Some(DeliveryTarget::Email {
            addresses: text("value")?.split(',').map(str::trim).filter(|a| !a.is_empty()).map(str::to_owned).collect(),
        }),
        "slack" => Some(DeliveryTarget::Slack {
            channel: text("channel").unwrap_or_default(),
            webhook_url: text("webhook_url"),
            integration_id: text("integration_id"),
        }),
        "webhook" => Some(DeliveryTarget::Webhook {
            url: text("url")?,
            secret: StoredSecret {
                sealed: SealedSecret(base64::engine::general_purpose::STANDARD.decode(text("secret_sealed")?).ok()?),
                masked: text("secret_masked").unwrap_or_default(),
            },
        }),
        _ => None,
    }
}

impl TryFrom<ReportRow> for Report {
    type Error = RepositoryError;

    fn try_from(row: ReportRow) -> Result<Self, Self::Error> {
        let frequency = Frequency::parse(&row.frequency).ok_or_else(|| corrupt("frequency", row.id))?;
        let alert_condition: Option<AlertCondition> = match row.alert_condition {
            Some(value) if !value.is_null() => {
                Some(serde_json::from_value(value).map_err(|_| corrupt("alert condition", row.id))?)
            }
            _ => None,
        };
        let delivery_targets = row
            .delivery_targets
            .as_array()
            .ok_or_else(|| corrupt("delivery targets", row.id))?
            .iter()
            .map(|t| target_from_json(t).ok_or_else(|| corrupt("delivery target", row.id)))
            .collect::<Result<Vec<_>, _>>()?;
        let created_by = row.user.summary();
        let whole = |value: i32| u32::try_from(value).unwrap_or(0);
        Ok(Report {
            id: ReportId(row.id),
            project: ProjectId(row.project_id),
            evaluation: EvaluationId(row.evaluation_id),
            frequency,
            alert_condition,
            rrule: row.rrule,
            starts_at: row.starts_at,
            timezone_name: row.timezone_name,
            next_delivery_date: row.next_delivery_date,
            delivery_targets,
            max_sample_size: whole(row.max_sample_size),
            enabled: row.enabled,
            deleted: row.deleted,
            last_delivered_at: row.last_delivered_at,
            report_prompt_guidance: row.report_prompt_guidance,
            trigger_threshold: whole(row.trigger_threshold),
            cooldown_minutes: whole(row.cooldown_minutes),
            daily_run_cap: whole(row.daily_run_cap),
            created_by,
            created_at: row.created_at,
        })
    }
}

#[derive(FromRow)]
struct RunRow {
    id: Uuid,
    project_id: i64,
    report_id: Uuid,
    content: Json<ReportContent>,
    metadata: Value,
    period_start: DateTime<Utc>,
    period_end: DateTime<Utc>,
    delivery_status: String,
    delivery_errors: Json<Vec<String>>,
    trend: Json<Vec<TrendPoint>>,
    created_at: DateTime<Utc>,
}

impl From<RunRow> for ReportRun {
    fn from(row: RunRow) -> Self {
        ReportRun {
            id: ReportRunId(row.id),
            project: ProjectId(row.project_id),
            report: ReportId(row.report_id),
            content: row.content.0,
            metadata: row.metadata,
            period: Period { start: row.period_start, end: row.period_end },
            delivery_status: DeliveryStatus::parse(&row.delivery_status).unwrap_or(DeliveryStatus::Pending),
            delivery_errors: row.delivery_errors.0,
            trend: row.trend.0,
            created_at: row.created_at,
        }
    }
}

#[derive(FromRow)]
pub(crate) struct DeliveryRow {
    target_index: i32,
    recipient: String,
    state: String,
    error: Option<String>,
    target: Value,
}

impl DeliveryRow {
    pub(crate) fn record(&self) -> DeliveryRecord {
        DeliveryRecord {
            target_index: u32::try_from(self.target_index).unwrap_or(0),
            recipient: self.recipient.clone(),
            state: DeliveryState::parse(&self.state).unwrap_or(DeliveryState::Pending),
            error: self.error.clone(),
        }
    }
}

/// Binds $1..$17, the report's own fields, in the order both statements take them.
fn bind_report<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    report: &'q Report,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    let targets = Value::Array(report.delivery_targets.iter().map(target_to_json).collect());
    let condition = report.alert_condition.map(|c| serde_json::to_value(c).unwrap_or(Value::Null));
    query
        .bind(report.project.0)
        .bind(report.id.0)
        .bind(report.evaluation.0)
        .bind(report.frequency.as_str())
        .bind(condition)
        .bind(&report.rrule)
        .bind(report.starts_at)
        .bind(&report.timezone_name)
        .bind(report.next_delivery_date)
        .bind(targets)
        .bind(int(report.max_sample_size))
        .bind(report.enabled)
        .bind(report.deleted)
        .bind(&report.report_prompt_guidance)
        .bind(int(report.trigger_threshold))
        .bind(int(report.cooldown_minutes))
        .bind(int(report.daily_run_cap))
}

pub(crate) fn int(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

#[async_trait]
impl ReportRepository for PgReportStore {
    async fn insert(&self, report: &Report, created_by: UserId) -> Result<(), RepositoryError> {
        bind_report(sqlx::query(INSERT_REPORT), report)
            .bind(created_by.0)
            .bind(report.created_at)
            .execute(&self.pool)
            .await
            .map_err(RepositoryError::new)?;
        Ok(())
    }

    async fn find(&self, project: ProjectId, id: ReportId) -> Result<Option<Report>, RepositoryError> {
        let row: Option<ReportRow> = sqlx::query_as(FIND_REPORT)
            .bind(project.0)
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(RepositoryError::new)?;
        row.map(Report::try_from).transpose()
    }

    async fn list(
        &self,
        project: ProjectId,
        evaluation: Option<EvaluationId>,
        page: PageRequest,
    ) -> Result<Page<Report>, RepositoryError> {
        let rows: Vec<ReportRow> = sqlx::query_as(LIST_REPORTS)
            .bind(project.0)
            .bind(evaluation.map(|e| e.0))
            .bind(page.limit())
            .bind(page.offset())
            .fetch_all(&self.pool)
            .await
            .map_err(RepositoryError::new)?;
        let total: i64 = sqlx::query_scalar(COUNT_REPORTS)
            .bind(project.0)
            .bind(evaluation.map(|e| e.0))
            .fetch_one(&self.pool)
            .await
            .map_err(RepositoryError::new)?;
        let items = rows.into_iter().map(Report::try_from).collect::<Result<Vec<_>, _>>()?;
        Ok(Page { items, total, request: page })
    }

    async fn save(&self, report: &Report) -> Result<bool, RepositoryError> {
        let result =
            bind_report(sqlx::query(SAVE_REPORT), report).execute(&self.pool).await.map_err(RepositoryError::new)?;
        Ok(result.rows_affected() == 1)
    }
}

#[async_trait]
impl ReportRunStore for PgReportStore {
    async fn schedule_candidates(&self, now: DateTime<Utc>) -> Result<Vec<ScheduleCandidate>, RepositoryError> {
        let rows: Vec<CandidateRow> =
            sqlx::query_as(SCHEDULE_CANDIDATES).bind(now).fetch_all(&self.pool).await.map_err(RepositoryError::new)?;
        rows.into_iter()
            .map(|row| {
                Ok(ScheduleCandidate {
                    automatic_runs_last_day: unsigned(row.runs_last_day),
                    report: Report::try_from(row.report)?,
                })
            })
            .collect()
    }

    async fn runs(
        &self,
        project: ProjectId,
        report: ReportId,
        page: PageRequest,
    ) -> Result<Page<ReportRun>, RepositoryError> {
        let rows: Vec<RunRow> = sqlx::query_as(LIST_RUNS)
            .bind(project.0)
            .bind(report.0)
            .bind(page.limit())
            .bind(page.offset())
            .fetch_all(&self.pool)
            .await
            .map_err(RepositoryError::new)?;
        let total: i64 = sqlx::query_scalar(COUNT_RUNS)
            .bind(project.0)
            .bind(report.0)
            .fetch_one(&self.pool)
            .await
            .map_err(RepositoryError::new)?;
        Ok(Page { items: rows.into_iter().map(ReportRun::from).collect(), total, request: page })
    }

    async fn run(&self, id: ReportRunId) -> Result<Option<ReportRun>, RepositoryError> {
        let row: Option<RunRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT_RUN} WHERE id = $1")))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(RepositoryError::new)?;
        Ok(row.map(ReportRun::from))
    }

    async fn delivery(
        &self,
        run: ReportRunId,
        target_index: u32,
        recipient: &str,
    ) -> Result<Option<StoredDelivery>, RepositoryError> {
        let row: Option<DeliveryRow> = sqlx::query_as(FIND_DELIVERY)
            .bind(run.0)
            .bind(int(target_index))
            .bind(recipient)
            .fetch_optional(&self.pool)
            .await
            .map_err(RepositoryError::new)?;
        row.map(|row| {
            let target = target_from_json(&row.target).ok_or_else(|| corrupt("delivery target", run.0))?;
            Ok(StoredDelivery { record: row.record(), target })
        })
        .transpose()
    }
}
