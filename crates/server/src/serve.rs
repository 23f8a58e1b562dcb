//! Serving: bind, serve until SIGTERM/Ctrl-C, finish in-flight requests, exit.

use std::time::Duration;

use adapters_postgres::PgAiEventStore;
use chrono::Utc;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::wiring;

/// Connects, migrates and serves on `listener` until a shutdown signal.
pub async fn serve(config: Config, listener: TcpListener) -> anyhow::Result<()> {
    let pool = adapters_postgres::connect(config.require_database_url()?, config.database_max_connections).await?;
    adapters_postgres::migrate(&pool).await?;
    let events = wiring::ai_event_store(&pool);
    events.create_partitions_ahead(Utc::now(), PARTITION_MONTHS_AHEAD).await?;
    spawn_partition_maintenance(events);
    let state = wiring::app_state(&config, &pool)?;
    let app = adapters_http::router(state);
    let address = listener.local_addr()?;
    // Tests and the dev command read this line to learn the port.
    println!("llm-analytics listening on http://{address}");
    tracing::info!(%address, "serving");
    axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await?;
    tracing::info!("stopped accepting; in-flight requests finished");
    pool.close().await;
    Ok(())
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

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received");
}
