//! The report statements a domain transaction runs (`ReportStatements`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::reports::delivery::{DeliveryRecord, DeliveryState};
use domain::reports::{DeliveryStatus, Frequency, LockedReport, NewDelivery, ReportRun, ReportStatements, Trigger};
use domain::{ReportId, ReportRunId, RepositoryError};
use serde_json::Value;
use sqlx::FromRow;
use sqlx::types::Json;

use crate::report_store::{
    ADVANCE_REPORT, DeliveryRow, END_DELIVERY, INSERT_DELIVERIES, INSERT_RUN, LOCK_REPORT, LOCK_RUN, RUN_DELIVERIES,
    SET_RUN_STATUS, int, target_to_json,
};
use crate::unit_of_work::PgTransaction;

#[derive(FromRow)]
struct LockedRow {
    frequency: String,
    next_delivery_date: Option<DateTime<Utc>>,
    last_delivered_at: Option<DateTime<Utc>>,
}

#[async_trait]
impl ReportStatements for PgTransaction {
    async fn lock_report(&mut self, report: ReportId) -> Result<Option<LockedReport>, RepositoryError> {
        let row: Option<LockedRow> = sqlx::query_as(LOCK_REPORT)
            .bind(report.0)
            .fetch_optional(self.connection().await?)
            .await
            .map_err(RepositoryError::new)?;
        row.map(|row| {
            let frequency = Frequency::parse(&row.frequency).ok_or_else(|| {
                RepositoryError::new(anyhow::anyhow!("report {report} has an invalid stored frequency"))
            })?;
            Ok(LockedReport {
                frequency,
                next_delivery_date: row.next_delivery_date,
                last_delivered_at: row.last_delivered_at,
            })
        })
        .transpose()
    }

    async fn insert_run(&mut self, run: &ReportRun, run_key: &str) -> Result<bool, RepositoryError> {
        Ok(self
            .execute(
                sqlx::query(INSERT_RUN)
                    .bind(run.id.0)
                    .bind(run.project.0)
                    .bind(run.report.0)
                    .bind(run_key)
                    .bind(run.trigger().is_some_and(Trigger::is_automatic))
                    .bind(Json(&run.content))
                    .bind(&run.metadata)
                    .bind(run.period.start)
                    .bind(run.period.end)
                    .bind(Json(&run.trend))
                    .bind(run.created_at),
            )
            .await?
            == 1)
    }

    async fn advance(
        &mut self,
        report: ReportId,
        delivered_at: DateTime<Utc>,
        next_delivery_date: Option<Option<DateTime<Utc>>>,
    ) -> Result<(), RepositoryError> {
        self.execute(
            sqlx::query(ADVANCE_REPORT)
                .bind(report.0)
                .bind(delivered_at)
                .bind(next_delivery_date.is_some())
                .bind(next_delivery_date.flatten()),
        )
        .await?;
        Ok(())
    }

    async fn insert_deliveries(&mut self, run: ReportRunId, deliveries: &[NewDelivery]) -> Result<(), RepositoryError> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let indexes: Vec<i32> = deliveries.iter().map(|d| int(d.target_index)).collect();
        let recipients: Vec<&str> = deliveries.iter().map(|d| d.recipient.as_str()).collect();
        let targets: Vec<Value> = deliveries.iter().map(|d| target_to_json(&d.target)).collect();
        self.execute(sqlx::query(INSERT_DELIVERIES).bind(run.0).bind(indexes).bind(recipients).bind(targets)).await?;
        Ok(())
    }

    async fn lock_run(&mut self, run: ReportRunId) -> Result<(), RepositoryError> {
        self.execute(sqlx::query(LOCK_RUN).bind(run.0)).await?;
        Ok(())
    }

    async fn end_delivery(
        &mut self,
        run: ReportRunId,
        target_index: u32,
        recipient: &str,
        state: DeliveryState,
        error: Option<String>,
    ) -> Result<(), RepositoryError> {
        self.execute(
            sqlx::query(END_DELIVERY)
                .bind(run.0)
                .bind(int(target_index))
                .bind(recipient)
                .bind(state.as_str())
                .bind(error),
        )
        .await?;
        Ok(())
    }

    async fn deliveries(&mut self, run: ReportRunId) -> Result<Vec<DeliveryRecord>, RepositoryError> {
        let rows: Vec<DeliveryRow> = sqlx::query_as(RUN_DELIVERIES)
            .bind(run.0)
            .fetch_all(self.connection().await?)
            .await
            .map_err(RepositoryError::new)?;
        Ok(rows.iter().map(DeliveryRow::record).collect())
    }

    async fn set_run_status(
        &mut self,
        run: ReportRunId,
        status: DeliveryStatus,
        errors: &[String],
    ) -> Result<(), RepositoryError> {
        self.execute(sqlx::query(SET_RUN_STATUS).bind(run.0).bind(status.as_str()).bind(Json(errors))).await?;
        Ok(())
    }
}
