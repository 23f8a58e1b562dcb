//! The report services, each one job: administration, the run page, the scheduler, run
//! generation and delivery. They share one set of ports, built once by the wiring.

use std::sync::Arc;
use std::time::Duration;

use super::admin::ReportAdmin;
use super::delivering::RunDeliveries;
use super::pages::RunPages;
use super::ports::{LinkSigner, ReportDelivery, ReportEvents, ReportRepository, ReportRunStore};
use super::run_generation::RunGeneration;
use super::run_writes::RunWrites;
use super::scheduler::ReportScheduler;
use super::targets::TargetPolicy;
use crate::crypto::KeyCipher;
use crate::evaluation::EvaluationRepository;
use crate::jobs::JobQueue;
use crate::llm::Llm;

/// The ports reports need.
pub struct ReportPorts {
    pub reports: Arc<dyn ReportRepository>,
    pub runs: Arc<dyn ReportRunStore>,
    /// The run and delivery jobs' transactions.
    pub run_writes: Arc<dyn RunWrites>,
    pub events: Arc<dyn ReportEvents>,
    pub evaluations: Arc<dyn EvaluationRepository>,
    pub jobs: Arc<dyn JobQueue>,
    pub llm: Arc<dyn Llm>,
    pub cipher: Arc<dyn KeyCipher>,
    pub signer: Arc<dyn LinkSigner>,
    pub delivery: Arc<dyn ReportDelivery>,
}

/// How reports behave here.
#[derive(Debug, Clone)]
pub struct ReportConfig {
    /// The base of the run page's links (`LLMA_PUBLIC_URL`), without a trailing slash.
    pub public_url: String,
    pub targets: TargetPolicy,
    /// `LLMA_DELIVERY_RETRY_BASE_SECS`.
    pub delivery_retry_base: Duration,
    pub llm_timeout: Duration,
}

/// Every report service, over one set of ports.
#[derive(Clone)]
pub struct ReportServices {
    /// CRUD, manual runs and the run list (the API).
    pub admin: Arc<ReportAdmin>,
    /// The signed run page and its links.
    pub pages: Arc<RunPages>,
    /// Which reports are due (every replica's tick).
    pub scheduler: Arc<ReportScheduler>,
    /// The handler of `report_run` jobs.
    pub runs: Arc<RunGeneration>,
    /// The handler of `report_delivery` jobs.
    pub deliveries: Arc<RunDeliveries>,
}

impl ReportServices {
    pub fn new(ports: ReportPorts, config: ReportConfig) -> Self {
        let pages = Arc::new(RunPages {
            reports: ports.reports.clone(),
            runs: ports.runs.clone(),
            evaluations: ports.evaluations.clone(),
            signer: ports.signer,
            public_url: config.public_url,
        });
        Self {
            admin: Arc::new(ReportAdmin {
                reports: ports.reports.clone(),
                runs: ports.runs.clone(),
                evaluations: ports.evaluations.clone(),
                jobs: ports.jobs.clone(),
                cipher: ports.cipher.clone(),
                targets: config.targets,
            }),
            scheduler: Arc::new(ReportScheduler::new(ports.runs.clone(), ports.events.clone(), ports.jobs.clone())),
            runs: Arc::new(RunGeneration {
                reports: ports.reports,
                writes: ports.run_writes.clone(),
                events: ports.events,
                evaluations: ports.evaluations,
                llm: ports.llm,
                llm_timeout: config.llm_timeout,
            }),
            deliveries: Arc::new(RunDeliveries {
                runs: ports.runs,
                writes: ports.run_writes,
                delivery: ports.delivery,
                cipher: ports.cipher,
                pages: pages.clone(),
                retry_base: config.delivery_retry_base,
            }),
            pages,
        }
    }
}

#[cfg(test)]
#[path = "services_tests.rs"]
pub(super) mod tests;
