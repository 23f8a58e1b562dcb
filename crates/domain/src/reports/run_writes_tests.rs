use chrono::TimeZone;
use mockall::predicate::eq;

use super::*;
use crate::jobs::JobId;
use crate::unit_of_work::testing::{MockTransaction, unit_of_work};

fn lease() -> Lease {
    Lease { job: JobId(uuid::Uuid::from_u128(1)), token: uuid::Uuid::from_u128(2) }
}

fn at(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 4, hour, 0, 0).unwrap()
}

fn automatic_run(expected_anchor: Option<DateTime<Utc>>) -> NewRun {
    NewRun {
        run: super::super::services::tests::stored_run(),
        run_key: "report-period".into(),
        expected_anchor: Some(expected_anchor),
        advance: Some((at(12), Some(at(13)))),
        deliveries: Vec::new(),
    }
}

#[tokio::test]
async fn a_run_whose_report_moved_its_anchor_is_not_stored_and_its_job_still_ends() {
    let mut tx = MockTransaction::default();
    tx.reports.expect_lock_report().returning(|_| {
        Ok(Some(LockedReport {
            frequency: Frequency::Scheduled,
            next_delivery_date: Some(at(13)),
            last_delivered_at: None,
        }))
    });
    tx.reports.expect_insert_run().never();
    tx.jobs.expect_end().with(eq(lease()), eq(Some(JobEnd::Complete))).times(1).returning(|_, _| Ok(true));
    let (unit_of_work, commits) = unit_of_work(tx);

    let stored = RunTransactions::new(Arc::new(unit_of_work)).store_run(&lease(), &automatic_run(Some(at(11)))).await;

    assert!(!stored.unwrap());
    assert_eq!(commits.count(), 1, "the job's end is committed");
}

#[tokio::test]
async fn an_every_n_run_moves_its_last_delivery_but_not_a_next_delivery_date() {
    let mut tx = MockTransaction::default();
    tx.reports.expect_lock_report().returning(|_| {
        Ok(Some(LockedReport {
            frequency: Frequency::EveryN,
            next_delivery_date: None,
            last_delivered_at: Some(at(9)),
        }))
    });
    tx.reports.expect_insert_run().times(1).returning(|_, _| Ok(true));
    tx.reports
        .expect_advance()
        .with(eq(ReportId(uuid::Uuid::from_u128(0x5E))), eq(at(12)), eq(None))
        .times(1)
        .returning(|_, _, _| Ok(()));
    tx.reports.expect_insert_deliveries().returning(|_, _| Ok(()));
    tx.jobs.expect_end().returning(|_, _| Ok(true));
    let (unit_of_work, commits) = unit_of_work(tx);

    let stored = RunTransactions::new(Arc::new(unit_of_work)).store_run(&lease(), &automatic_run(Some(at(9)))).await;

    assert!(stored.unwrap());
    assert_eq!(commits.count(), 1);
}

#[tokio::test]
async fn a_lapsed_lease_stores_no_run() {
    let mut tx = MockTransaction::default();
    tx.reports.expect_lock_report().returning(|_| Ok(None));
    tx.jobs.expect_end().returning(|_, _| Ok(false));
    let (unit_of_work, commits) = unit_of_work(tx);

    let stored = RunTransactions::new(Arc::new(unit_of_work)).store_run(&lease(), &automatic_run(None)).await;

    assert!(!stored.unwrap());
    assert_eq!(commits.count(), 0);
}

#[tokio::test]
async fn a_finished_delivery_recomputes_its_runs_status_from_every_delivery() {
    let run = ReportRunId(uuid::Uuid::from_u128(0xAB));
    let mut tx = MockTransaction::default();
    tx.reports.expect_lock_run().times(1).returning(|_| Ok(()));
    tx.reports.expect_end_delivery().times(1).returning(|_, _, _, _, _| Ok(()));
    tx.reports.expect_deliveries().returning(|_| {
        Ok(vec![
            DeliveryRecord { target_index: 0, recipient: "a@x".into(), state: DeliveryState::Sent, error: None },
            DeliveryRecord {
                target_index: 1,
                recipient: String::new(),
                state: DeliveryState::Failed,
                error: Some("Failed to deliver to target 1: 500".into()),
            },
        ])
    });
    tx.reports
        .expect_set_run_status()
        .withf(|_, status, errors| *status == DeliveryStatus::PartialFailure && errors.len() == 1)
        .times(1)
        .returning(|_, _, _| Ok(()));
    tx.jobs.expect_end().returning(|_, _| Ok(true));
    let (unit_of_work, commits) = unit_of_work(tx);
    let writes = RunTransactions::new(Arc::new(unit_of_work));

    let ended =
        writes.finish_delivery(&lease(), EndedDelivery { run, record: failed(1, "", "500") }, &JobEnd::Complete).await;

    assert!(ended.unwrap());
    assert_eq!(commits.count(), 1);
}

fn failed(target_index: u32, recipient: &str, error: &str) -> DeliveryRecord {
    DeliveryRecord {
        target_index,
        recipient: recipient.into(),
        state: DeliveryState::Failed,
        error: Some(error.into()),
    }
}
