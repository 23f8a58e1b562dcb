//! Serving: the HTTP API and the worker loop (both by default, or either alone), until
//! SIGTERM/Ctrl-C; then in-flight requests and jobs finish and the process exits.

use std::sync::Arc;
use std::time::Duration;

use adapters_postgres::PgAiEventStore;
use chrono::Utc;
use domain::jobs::JobKind;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use crate::wiring::Services;
use crate::worker::{Worker, WorkerSettings};

/// What this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The HTTP API and the worker (the default).
    All,
    /// Only the HTTP API: jobs are queued, other processes run them.
    Api,
    /// Only the worker.
    Worker,
}

/// Connects, migrates, and runs `role` until a shutdown signal. `listener` is required
/// unless the role is worker-only.
pub async fn serve(mut config: Config, listener: Option<TcpListener>, role: Role) -> anyhow::Result<()> {
    if !config.http.public_url_explicit
        && let Some(address) = listener.as_ref().and_then(|l| l.local_addr().ok())
    {
        // `http://{LLMA_BIND}` with the port actually bound (LLMA_BIND may say port 0).
        config.http.public_url = format!("http://{address}");
    }
    // The metrics listener is bound first: a port in use stops the start-up here.
    let metrics_listener = match config.metrics.bind {
        Some(address) => Some(
            TcpListener::bind(address)
                .await
                .map_err(|e| anyhow::anyhow!("LLMA_METRICS_BIND: cannot listen on {address}: {e}"))?,
        ),
        None => None,
    };
    let pool = adapters_postgres::connect(config.require_database_url()?, config.database.max_connections).await?;
    adapters_postgres::migrate(&pool).await?;
    let reads = adapters_postgres::ReadConnections::new(&pool, config.database.read_connections);
    let services = Services::build(&config, &pool, &reads)?;
    services.events.create_partitions_ahead(Utc::now(), PARTITION_MONTHS_AHEAD).await?;
    spawn_partition_maintenance(services.events.clone());

    let (stop, stopping) = watch::channel(false);
    let signalled = shutdown_signal();
    tokio::spawn(async move {
        signalled.await;
        let _ = stop.send(true);
    });

    if let Some(listener) = metrics_listener {
        let handle = crate::telemetry::install()?;
        let address = listener.local_addr()?;
        // Tests read this line to learn the port (printed before the API's line).
        println!("llm-analytics metrics on http://{address}/metrics");
        let gauges = crate::telemetry::DatabaseGauges::new(pool.clone(), reads.clone(), services.job_table.clone());
        tokio::spawn(crate::telemetry::serve(listener, handle, Arc::new(gauges), stopping.clone()));
    }

    let worker = (role != Role::Api).then(|| {
        Worker::new(services.jobs.clone(), worker_settings(&config))
            .handle(JobKind::Judge, services.api.judge.clone(), config.worker.judge_concurrency)
            .handle_batched(
                JobKind::JudgeCode,
                services.api.judge.clone(),
                config.worker.code_judge_concurrency,
                config.worker.code_judge_batch,
            )
            .handle(JobKind::JudgeTarget, services.api.judge.clone(), config.worker.judge_concurrency)
            .handle(JobKind::BackfillJudge, services.api.judge.clone(), config.worker.backfill_concurrency)
            .handle(JobKind::Backfill, services.api.backfills.clone(), 1)
            .handle(JobKind::Housekeeping, services.housekeeping.clone(), 1)
            .handle(JobKind::ReportRun, services.reports.runs.clone(), config.worker.report_run_concurrency)
            .handle(JobKind::ReportDelivery, services.reports.deliveries.clone(), config.worker.delivery_concurrency)
    });
    if role != Role::Api && !config.reports.scheduler_interval.is_zero() {
        spawn_report_scheduler(services.reports.scheduler.clone(), config.reports.scheduler_interval, stopping.clone());
    }
    if role != Role::Api && !config.worker.housekeeping_interval.is_zero() {
        spawn_housekeeping_schedule(services.jobs.clone(), config.worker.housekeeping_interval, stopping.clone());
    }
    let api = async {
        let Some(listener) = listener.filter(|_| role != Role::Worker) else {
            println!("llm-analytics worker running");
            return Ok::<(), anyhow::Error>(());
        };
        let app = adapters_http::router(services.api.clone());
        let address = listener.local_addr()?;
        // Tests and the dev command read this line to learn the port.
        println!("llm-analytics listening on http://{address}");
        tracing::info!(%address, ?role, "serving");
        let limits = crate::http_server::ConnectionLimits {
            header_timeout: config.http.header_timeout,
            max_connections: config.http.max_connections,
        };
        crate::http_server::serve(listener, app, limits, stopping.clone(), Duration::from_secs(30)).await;
        tracing::info!("stopped accepting; in-flight requests finished");
        Ok(())
    };
    let work = async {
        if let Some(worker) = worker {
            worker.run(stopping.clone()).await;
        }
    };
    let (served, ()) = tokio::join!(api, work);
    served?;
    pool.close().await;
    Ok(())
}

fn worker_settings(config: &Config) -> WorkerSettings {
    WorkerSettings {
        lease: config.worker.lease,
        retry_base: config.worker.retry_base,
        idle_poll: Duration::from_millis(200),
        shutdown_grace: config.llm.timeout.min(Duration::from_secs(30)),
    }
}

/// Enqueues the sweep of each period; every replica does, the period's unique key lets
/// one sweep run (whichever worker claims it).
fn spawn_housekeeping_schedule(
    jobs: std::sync::Arc<dyn domain::jobs::JobQueue>,
    every: Duration,
    mut stopping: watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        loop {
            let job = domain::housekeeping::sweep_job(Utc::now(), every);
            if let Err(error) = jobs.enqueue(std::slice::from_ref(&job)).await {
                tracing::warn!(error = %error.0, "could not enqueue the housekeeping sweep; trying next period");
            }
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                _ = stopping.wait_for(|stop| *stop) => return,
            }
        }
    });
}

/// Looks for due reports every `every` and enqueues their runs; every replica does, the
/// run keys let one run happen per report and period.
fn spawn_report_scheduler(
    reports: std::sync::Arc<domain::reports::ReportScheduler>,
    every: Duration,
    mut stopping: watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        loop {
            match reports.tick(Utc::now()).await {
                Ok(0) => tracing::debug!("report scheduler tick: nothing due"),
                Ok(queued) => tracing::info!(queued, "report runs queued"),
                Err(error) => tracing::warn!(error = %error.0, "the report scheduler's tick failed; trying next tick"),
            }
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                _ = stopping.wait_for(|stop| *stop) => return,
            }
        }
    });
}

/// How many months after the current one have their `ai_events` partition made ahead.
const PARTITION_MONTHS_AHEAD: u32 = 2;

/// Keeps the coming months' event partitions created while the process runs for months
/// (batches also create theirs on demand; doing it ahead keeps that off the write path).
fn spawn_partition_maintenance(events: PgAiEventStore) {
    tokio::spawn(async move {
        let mut daily = tokio::time::interval(Duration::from_secs(24 * 60 * 60));
        daily.tick().await; // the first tick is immediate: start-up just did it
        loop {
            daily.tick().await;
            if let Err(error) = events.create_partitions_ahead(Utc::now(), PARTITION_MONTHS_AHEAD).await {
                tracing::warn!(error = %error, "creating ai_events partitions ahead failed; will retry tomorrow");
            }
        }
    });
}

/// Waits for SIGTERM or Ctrl-C. The handlers are installed when this is called, not when
/// the future is first polled, so a signal that arrives right after start-up is not lost
/// (it would otherwise kill the process with the default action).
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        (signal(SignalKind::terminate()).ok(), signal(SignalKind::interrupt()).ok())
    };
    async move {
        #[cfg(unix)]
        {
            let (mut terminate, mut interrupt) = signals;
            tokio::select! {
                Some(()) = async { terminate.as_mut()?.recv().await } => {},
                Some(()) = async { interrupt.as_mut()?.recv().await } => {},
                else => std::future::pending::<()>().await,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutdown signal received");
    }
}
