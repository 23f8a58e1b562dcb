//! `cargo xtask`: the developer workflows of llm-analytics, as a Rust program.
//!
//! PostgreSQL comes from the machine's own binaries (`apt-get install postgresql`); when
//! run as root, its programs run as the `postgres` user.

mod bench;
mod dev;
mod packages;
mod postgres;
mod process;
mod provision;
mod test;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::process::{Interrupted, Signals};

#[derive(Parser)]
#[command(name = "xtask", bin_name = "cargo xtask", about = "Developer workflows of llm-analytics")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API at LLMA_BIND (default 127.0.0.1:8000) against a private PostgreSQL
    /// in .data/ (created on first use), with a demo project, user and API key.
    Dev,
    /// Run every test of the workspace against a throwaway PostgreSQL, whose URL is in
    /// LLMA_TEST_DATABASE_URL.
    ///
    /// Arguments go to `cargo test --workspace --all-targets` (then `--doc`) as they are,
    /// e.g. `cargo xtask test -p domain -- --nocapture`.
    Test {
        /// Options for `cargo test`; those after `--` go to the test binaries.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Benchmark the release server against PostgreSQL doing the same work alone, on one
    /// throwaway cluster, and print a table and a Markdown summary.
    ///
    /// reads: GET of a provider key over N keep-alive connections beside `pgbench -S`;
    /// ingest: `$ai_evaluation` events through POST /batch/ beside `COPY` of the same rows;
    /// offline: experiment_items/ over a million stored events beside its SQL in psql.
    Bench(bench::BenchArgs),
    /// Start the dev PostgreSQL of `dev`, print its DATABASE_URL, and keep it up until Ctrl-C.
    Db,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command).await {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            if let Some(Interrupted(sig)) = error.downcast_ref() {
                eprintln!("xtask: {error}");
                return ExitCode::from(sig.exit_code());
            }
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<u8> {
    let mut signals = Signals::install()?;
    let root = repo_root();
    match command {
        Command::Dev => dev::dev(&root, &mut signals).await,
        // Not clap's `args`: clap drops a leading `--`, which `cargo test -- --nocapture`
        // needs. There are no global options, so the test arguments are all after `test`.
        Command::Test { .. } => {
            let args: Vec<String> = std::env::args().skip(2).collect();
            test::run(&root, &args, &mut signals).await
        }
        Command::Db => dev::db(&root, &mut signals).await,
        Command::Bench(args) => bench::run(&root, &args, &mut signals).await,
    }
}

/// The workspace root: the folder above this crate.
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in a folder of the workspace").to_path_buf()
}
