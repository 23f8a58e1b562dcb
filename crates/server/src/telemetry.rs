//! Operators' metrics (spec section 10): the Prometheus recorder, `GET /metrics` on its own
//! listener (`LLMA_METRICS_BIND`), the gauges read from the database when it is scraped
//! (jobs by kind and state, the oldest due job's wait, pool connections), and decorators
//! that count LLM calls, tokens, trial credits and deliveries where they happen.

use std::sync::Arc;
use std::time::{Duration, Instant};

use adapters_postgres::{PgJobQueue, PgPool, ReadConnections};
use async_trait::async_trait;
use domain::RepositoryError;
use domain::llm::{LlmCallLog, LlmCallOutcome, LlmCallRecord, LlmPurpose};
use domain::provider_key::Provider;
use domain::reports::ReportDelivery;
use domain::reports::delivery::{ResolvedTarget, SendFailure};
use domain::reports::render::RenderedRun;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Latency buckets in seconds: 1 ms to 2 minutes (LLM calls take seconds).
const SECONDS_BUCKETS: [f64; 14] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0, 120.0];

/// How old a reading of the job gauges may be before a scrape reads them again.
const GAUGE_INTERVAL: Duration = Duration::from_secs(5);

/// Installs the process's recorder (once) and returns the handle that renders it.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)?
        .install_recorder()?;
    register_known_series();
    Ok(handle)
}

/// Every counter whose labels are known in advance exists from the start at 0, so that
/// `rate()` and alerts see the first event rather than a series appearing mid-window.
fn register_known_series() {
    for source in ["capture", "otel"] {
        for name in [
            "llma_events_ingested_total",
            "llma_events_duplicate_total",
            "llma_events_dropped_total",
            "llma_events_unpriced_total",
        ] {
            metrics::counter!(name, "source" => source).increment(0);
        }
    }
    for target in ["email", "slack", "webhook"] {
        for outcome in ["sent", "retryable_failure", "failed"] {
            metrics::counter!("llma_deliveries_total", "target" => target, "outcome" => outcome).increment(0);
        }
    }
    for provider in Provider::ALL.map(Provider::as_str) {
        for purpose in LlmPurpose::ALL.map(LlmPurpose::as_str) {
            for outcome in LlmCallOutcome::ALL.map(LlmCallOutcome::as_str) {
                metrics::counter!("llma_llm_calls_total", "provider" => provider, "purpose" => purpose, "outcome" => outcome)
                    .increment(0);
            }
            for direction in ["in", "out"] {
                metrics::counter!("llma_llm_tokens_total", "provider" => provider, "purpose" => purpose, "direction" => direction)
                    .increment(0);
            }
        }
    }
    metrics::counter!("llma_trial_credits_used_total").increment(0);
    metrics::counter!("llma_ingest_memory_refused_total").increment(0);
}

/// Serves `GET /metrics` on `listener` until `stopping`; each scrape refreshes the
/// database gauges first (see [`DatabaseGauges`]).
pub async fn serve(
    listener: TcpListener,
    handle: PrometheusHandle,
    gauges: Arc<DatabaseGauges>,
    mut stopping: watch::Receiver<bool>,
) {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let (handle, gauges) = (handle.clone(), gauges.clone());
            async move {
                gauges.refresh().await;
                ([("content-type", "text/plain; version=0.0.4")], handle.render())
            }
        }),
    );
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stopping.wait_for(|stop| *stop).await;
        })
        .await;
    if let Err(error) = served {
        tracing::warn!(%error, "the metrics listener stopped");
    }
}

/// The gauges read from the database and the pool, refreshed when `/metrics` is scraped
/// rather than on a timer: counting the job table reads all of it (80 ms at 100,000 jobs,
/// more once it no longer fits in memory), which a replica nobody scrapes should not pay
/// every few seconds. The job counts are read at most once per [`GAUGE_INTERVAL`]: a
/// scrape in between (several scrapers) shows the last reading.
pub struct DatabaseGauges {
    pool: PgPool,
    reads: ReadConnections,
    jobs: PgJobQueue,
    jobs_read_at: tokio::sync::Mutex<Option<Instant>>,
}

impl DatabaseGauges {
    pub fn new(pool: PgPool, reads: ReadConnections, jobs: PgJobQueue) -> Self {
        Self { pool, reads, jobs, jobs_read_at: tokio::sync::Mutex::new(None) }
    }

    /// Sets the pool gauges, and the job gauges when their last reading is older than
    /// [`GAUGE_INTERVAL`] (concurrent scrapes wait for one reading).
    pub async fn refresh(&self) {
        // The pool and the hot reads' own connections: one budget to the operator.
        let (lent, idle_reads) = self.reads.usage();
        let size = f64::from(self.pool.size());
        let idle = f64::from(u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX));
        metrics::gauge!("llma_db_pool_connections", "state" => "in_use").set(size - idle + lent as f64);
        metrics::gauge!("llma_db_pool_connections", "state" => "idle").set(idle + idle_reads as f64);

        let mut read_at = self.jobs_read_at.lock().await;
        if read_at.is_some_and(|at| at.elapsed() < GAUGE_INTERVAL) {
            return;
        }
        match self.jobs.stats().await {
            Ok(stats) => {
                let mut oldest: f64 = 0.0;
                for kind in stats {
                    let label = kind.kind.clone();
                    metrics::gauge!("llma_jobs", "kind" => label.clone(), "state" => "queued", "scope" => "database")
                        .set(kind.queued as f64);
                    metrics::gauge!("llma_jobs", "kind" => label.clone(), "state" => "running", "scope" => "database")
                        .set(kind.running as f64);
                    metrics::gauge!("llma_jobs", "kind" => label.clone(), "state" => "failed", "scope" => "database")
                        .set(kind.failed as f64);
                    metrics::gauge!("llma_jobs_oldest_due_seconds", "kind" => label, "scope" => "database")
                        .set(kind.oldest_due_seconds);
                    oldest = oldest.max(kind.oldest_due_seconds);
                }
                metrics::gauge!("llma_jobs_oldest_due_age_seconds", "scope" => "database").set(oldest);
                *read_at = Some(Instant::now());
            }
            // The scrape shows the last reading; the next one tries again.
            Err(error) => tracing::debug!(error = %error.0, "could not read the job gauges"),
        }
    }
}

/// Counts every LLM call as it is recorded: by provider, purpose and outcome, its
/// latency and tokens; a judge call on the system LLM that succeeded used a trial credit.
pub struct MeteredLlmCalls(pub Arc<dyn LlmCallLog>);

#[async_trait]
impl LlmCallLog for MeteredLlmCalls {
    async fn record(&self, call: &LlmCallRecord) -> Result<(), RepositoryError> {
        let provider = call.provider.as_str();
        let purpose = call.purpose.as_str();
        let outcome = call.outcome.as_str();
        metrics::counter!("llma_llm_calls_total", "provider" => provider, "purpose" => purpose, "outcome" => outcome)
            .increment(1);
        metrics::histogram!("llma_llm_call_duration_seconds", "provider" => provider, "purpose" => purpose)
            .record(call.latency_ms as f64 / 1e3);
        metrics::counter!("llma_llm_tokens_total", "provider" => provider, "purpose" => purpose, "direction" => "in")
            .increment(call.input_tokens);
        metrics::counter!("llma_llm_tokens_total", "provider" => provider, "purpose" => purpose, "direction" => "out")
            .increment(call.output_tokens);
        if call.purpose == LlmPurpose::Judge && call.key.is_none() && outcome == "ok" {
            metrics::counter!("llma_trial_credits_used_total").increment(1);
        }
        self.0.record(call).await
    }
}

/// Counts report deliveries by target type and outcome (sent, retry, failed).
pub struct MeteredDelivery(pub Arc<dyn ReportDelivery>);

#[async_trait]
impl ReportDelivery for MeteredDelivery {
    async fn send(&self, target: &ResolvedTarget, run: &RenderedRun, delivery_id: &str) -> Result<(), SendFailure> {
        let sent = self.0.send(target, run, delivery_id).await;
        let outcome = match &sent {
            Ok(()) => "sent",
            Err(failure) if failure.retryable => "retryable_failure",
            Err(_) => "failed",
        };
        metrics::counter!("llma_deliveries_total", "target" => target.type_name(), "outcome" => outcome).increment(1);
        sent
    }
}
