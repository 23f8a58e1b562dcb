//! A transaction over mocked statements, for the domain's unit tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;

use super::{MockUnitOfWork, Transaction};
use crate::RepositoryError;
use crate::backfill::{BackfillStatements, MockBackfillStatements};
use crate::evaluation::{EvaluationStatements, MockEvaluationStatements};
use crate::ingestion::{EventStatements, MockEventStatements};
use crate::jobs::{JobStatements, MockJobStatements};
use crate::judge::{HourlyCapStatements, MockHourlyCapStatements};
use crate::provider_key::{MockProviderKeyStatements, ProviderKeyStatements};
use crate::reports::{MockReportStatements, ReportStatements};
use crate::summary::{MockRateLimitStatements, RateLimitStatements};

/// Mocked statements of every context; a test sets expectations on the ones its use case
/// runs (a statement without expectations fails the test when called).
#[derive(Default)]
pub(crate) struct MockTransaction {
    pub keys: MockProviderKeyStatements,
    pub evaluations: MockEvaluationStatements,
    pub rate_limits: MockRateLimitStatements,
    pub events: MockEventStatements,
    pub jobs: MockJobStatements,
    pub hourly_caps: MockHourlyCapStatements,
    pub reports: MockReportStatements,
    pub backfills: MockBackfillStatements,
    commits: Arc<AtomicUsize>,
}

/// How many transactions of a [`unit_of_work`] committed.
#[derive(Clone, Default)]
pub(crate) struct Commits(Arc<AtomicUsize>);

impl Commits {
    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Transaction for MockTransaction {
    fn provider_keys(&mut self) -> &mut dyn ProviderKeyStatements {
        &mut self.keys
    }

    fn evaluations(&mut self) -> &mut dyn EvaluationStatements {
        &mut self.evaluations
    }

    fn rate_limits(&mut self) -> &mut dyn RateLimitStatements {
        &mut self.rate_limits
    }

    fn events(&mut self) -> &mut dyn EventStatements {
        &mut self.events
    }

    fn jobs(&mut self) -> &mut dyn JobStatements {
        &mut self.jobs
    }

    fn hourly_caps(&mut self) -> &mut dyn HourlyCapStatements {
        &mut self.hourly_caps
    }

    fn reports(&mut self) -> &mut dyn ReportStatements {
        &mut self.reports
    }

    fn backfills(&mut self) -> &mut dyn BackfillStatements {
        &mut self.backfills
    }

    async fn commit(self: Box<Self>) -> Result<(), RepositoryError> {
        self.commits.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// A unit of work that begins `transaction` once, and counts its commit.
pub(crate) fn unit_of_work(mut transaction: MockTransaction) -> (MockUnitOfWork, Commits) {
    let commits = Commits::default();
    transaction.commits = commits.0.clone();
    let mut unit_of_work = MockUnitOfWork::new();
    unit_of_work.expect_begin().times(1).return_once(move || Ok(Box::new(transaction)));
    (unit_of_work, commits)
}
