use std::process::ExitCode;

use clap::Parser;
use llm_analytics::cli::{Cli, Command};
use llm_analytics::config::Config;
use llm_analytics::serve::Role;
use llm_analytics::{admin, serve};
use tracing_subscriber::EnvFilter;

mod allocator;

fn init_logging(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn run(cli: Cli, config: Config) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let role = match (args.api_only, args.worker_only) {
                (true, _) => Role::Api,
                (_, true) => Role::Worker,
                _ => Role::All,
            };
            let listener = match role {
                Role::Worker => None,
                _ => Some(
                    tokio::net::TcpListener::bind(config.http.bind)
                        .await
                        .map_err(|e| anyhow::anyhow!("LLMA_BIND: cannot listen on {}: {e}", config.http.bind))?,
                ),
            };
            serve::serve(config, listener, role).await
        }
        Command::Migrate => {
            let pool = adapters_postgres::connect(config.require_database_url()?, 2).await?;
            adapters_postgres::migrate(&pool).await?;
            println!("{}", serde_json::json!({"migrated": true}));
            Ok(())
        }
        Command::Admin(command) => {
            let output = admin::run(&config, command).await?;
            println!("{output}");
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    if matches!(cli.command, Command::Serve(_))
        && let Err(error) = llm_analytics::wiring::check_for_serving(&config)
    {
        eprintln!("error: {error}");
        return ExitCode::from(2);
    }
    init_logging(config.json_logs);
    if let Command::Serve(args) = &cli.command
        && args.worker_only
    {
        llm_analytics::memory::configure_allocator_for_worker();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(llm_analytics::memory::give_back_thread_memory)
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
