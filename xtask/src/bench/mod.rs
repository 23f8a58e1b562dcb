//! `cargo xtask bench`: the release server under load next to PostgreSQL doing the same
//! work by itself, on one throwaway cluster.
//!
//! Four measurements, each beside its yardstick (both share the machine's cores with their
//! load generator, so only the ratio means something):
//!
//! - **reads** ([`provider_key_reads`]): `GET provider_keys/{id}/` from N keep-alive
//!   connections, beside `pgbench -S` at the same concurrency;
//! - **ingest** ([`ingestion`]): `$ai_evaluation` events through `POST /batch/`, beside
//!   `COPY` of the same rows into the same tables;
//! - **offline** ([`offline_items`]): `offline_evaluations/experiment_items/` over a million
//!   stored events, beside the adapter's SQL run by `psql`;
//! - **summary** ([`summary`]): the cached `evaluation_summary/` under load, and its run
//!   query beside the adapter's SQL run by `psql`;
//! - **judge** ([`judge`]): judged generations per second end to end with one and three
//!   replicas, claim latency with 100 000 due jobs, and `evaluation_results/` beside its
//!   SQL in `psql`;
//! - **otel** ([`otel`]): OTLP protobuf spans through `/i/v0/ai/otel` beside the same
//!   generations through `/batch/` as JSON;
//! - **reports** ([`reports`]): a report period's metrics through the service's adapter
//!   beside the same statements in `psql`, and one scheduler tick over 10 000 reports;
//! - **burst** ([`burst`]): 16 concurrent 18.5 MB batches on a server of their own: every
//!   event stored (503s retried), peak RSS, and RSS 30 s later;
//! - **code** ([`code_judge`]): Hog judgements per second through the job table, one worker
//!   process pinned to one core, on a database of its own.

mod burst;
mod code_judge;
mod cpu_time;
mod ingestion;
mod ingestion_judged;
mod judge;
mod load;
mod offline_items;
mod otel;
mod provider_key_reads;
mod report;
mod reports;
mod server;
mod summary;

use std::path::Path;
use std::process::Output;

use anyhow::{Context, Result, bail};

use self::report::{LoadResult, Measured, Report, SummaryRow, ms, thousands};
use self::server::{FakeOpenai, RunningServer, encryption_keys, http_client, peak_rss_kib};
use crate::dev::{Server, scalar, target_dir};
use crate::postgres::{Durability, LocalPostgres, PgBinaries, free_port};
use crate::process::{self, Interrupted, Signals, cargo_program};
use crate::test::TempDir;

/// The server's database (the ingestion and offline measurements use it too).
pub(super) const SERVER_DATABASE: &str = "bench";

/// One measurement of the bench.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    /// `GET provider_keys/{id}/` beside `pgbench -S`.
    Reads,
    /// `POST /batch/` of `$ai_evaluation` events beside `COPY` of the same rows.
    Ingest,
    /// `offline_evaluations/experiment_items/` beside its SQL in psql.
    Offline,
    /// `evaluation_summary/` cached under load, and its run query beside psql.
    Summary,
    /// The judge runner: throughput with 1 and 3 replicas, claim latency, results query.
    Judge,
    /// OTel spans through `/i/v0/ai/otel` (protobuf) beside `/batch/` (JSON).
    Otel,
    /// Report metrics beside psql, and one scheduler tick over 10 000 reports.
    Reports,
    /// Concurrent 18.5 MB batches against a server of their own: all stored, memory bounded.
    Burst,
    /// Hog code evaluators' judgements through the job table, one worker on one core.
    Code,
}

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Run only these measurements (repeat or separate with commas); default: all.
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Part>,
    /// Measured seconds of each timed load (reads, `pgbench -S`, ingestion).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    seconds: u64,
    /// Unmeasured seconds before each timed load.
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    /// reads: concurrent connections, of the HTTP load and of `pgbench -c` alike.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=1000))]
    connections: u64,
    /// ingest: concurrent senders of `POST /batch/`, and parallel `COPY` processes.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=64))]
    senders: u64,
    /// ingest: events per `POST /batch/`.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    batch_size: u64,
    /// offline, summary: events stored before the query is timed.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(10_000..))]
    seed_events: u64,
    /// offline: items of the benchmarked experiment (each with 3 metrics).
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(1..=6_000))]
    items: u64,
    /// offline, summary: timed requests one at a time (and timed psql executions), after
    /// the warm-up ones.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    requests: u64,
    /// offline, summary: unmeasured requests (and psql executions) first.
    #[arg(long, default_value_t = 3)]
    warmup_requests: u64,
    /// summary: runs (`$ai_evaluation` events) of the benchmarked evaluation among the
    /// seeded events.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    summary_runs: u64,
    /// judge: generations sent (and judged) per throughput measurement.
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(100..=1_000_000))]
    judge_generations: u64,
    /// code: generations stored, then judged by a Hog evaluator.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1_000..=2_000_000))]
    code_generations: u64,
    /// burst: concurrent `POST /batch/` of ~18.5 MB each.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=64))]
    burst_requests: u64,
    /// burst: bursts, each against a fresh server (the memory target holds in every one).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=20))]
    burst_runs: u64,
}

impl BenchArgs {
    fn runs(&self, part: Part) -> bool {
        self.only.is_empty() || self.only.contains(&part)
    }
}

/// What a bench run knows about its server and cluster; every measurement gets it.
pub(super) struct Setup<'a> {
    server: &'a Server,
    pg: &'a LocalPostgres,
    /// A folder for data files, deleted after the run.
    dir: &'a Path,
    base_url: &'a str,
    project_id: &'a str,
    /// A personal API key with every scope.
    personal_key: &'a str,
    /// The project's public token (`phc_…`), for capture.
    project_token: &'a str,
    /// The OpenAI the server talks to (also the system LLM of summaries).
    fake_openai: &'a FakeOpenai,
}

impl Setup<'_> {
    /// `llm-analytics migrate` against another database of the bench cluster.
    fn migrate(&self, database: &str) -> tokio::process::Command {
        let mut cmd = self.server.command(&["migrate"]);
        cmd.env("DATABASE_URL", self.pg.url(database));
        cmd
    }
}

/// A project made with the admin commands, with an admin holding an all-scopes API key.
struct BenchProject {
    id: String,
    /// The public token (`phc_…`), for capture.
    token: String,
    personal_key: String,
}

impl BenchProject {
    fn create(server: &Server, name: &str, admin_email: &str) -> Result<Self> {
        let project = server.admin(&["create-project", "--name", name])?;
        let id = scalar(&project["id"]).context("create-project printed no id")?;
        let token = scalar(&project["api_token"]).context("create-project printed no api_token")?;
        server.admin(&["create-user", "--email", admin_email, "--project", &id, "--level", "admin"])?;
        let api_key = server.admin(&["create-api-key", "--email", admin_email, "--scopes", "*", "--label", "bench"])?;
        let personal_key = scalar(&api_key["key"]).context("create-api-key printed no key")?;
        Ok(Self { id, token, personal_key })
    }
}

/// `llm-analytics serve <args>` as the bench runs it: any port, the fake OpenAI as OpenAI
/// and as the system LLM, quiet logs.
fn serve_command(server: &Server, fake_openai: &FakeOpenai, args: &[&str]) -> tokio::process::Command {
    let mut all = vec!["serve"];
    all.extend_from_slice(args);
    let mut serve = server.command(&all);
    serve
        .env("LLMA_BIND", "127.0.0.1:0")
        .env("LLMA_OPENAI_BASE_URL", format!("http://{}/v1", fake_openai.address))
        // The summary's LLM: the fake OpenAI (its answer set by the summary measurement).
        .env("LLMA_SYSTEM_LLM_PROVIDER", "openai")
        .env("LLMA_SYSTEM_LLM_API_KEY", "sk-bench-123456")
        // The reports measurement ticks the scheduler itself; the server's own would race it.
        .env("LLMA_SCHEDULER_INTERVAL_SECS", "0")
        // Recording metrics is part of serving a request, so it is measured; several bench
        // servers run at once, each on a port of its own.
        .env("LLMA_METRICS_BIND", "127.0.0.1:0")
        // Not sqlx's slow-statement warnings, which print whole statements: the bench
        // reports slowness itself.
        .env("RUST_LOG", "warn,sqlx::query=error");
    serve
}

/// Builds the release server, runs the chosen measurements, prints the table and the
/// Markdown summary; 0 when every measured request succeeded.
pub async fn run(root: &Path, args: &BenchArgs, signals: &mut Signals) -> Result<u8> {
    let mut build = tokio::process::Command::new(cargo_program());
    build.args(["build", "--release", "-p", "llm-analytics"]).current_dir(root);
    if std::env::var_os("SQLX_OFFLINE").is_none() {
        build.env("SQLX_OFFLINE", "true");
    }
    eprintln!("xtask: cargo build --release -p llm-analytics");
    let built = process::run(&mut build, signals).await?;
    process::check_status(built, "`cargo build --release -p llm-analytics`")?;
    let binary = target_dir(root)?.join("release/llm-analytics");

    let bin = PgBinaries::find()?;
    let dir = TempDir::create("llma-bench")?;
    let mut pg =
        LocalPostgres::new(bin, dir.path().join("data"), dir.path().join("postgres.log"), Durability::Throwaway);
    pg.init()?;
    signals.check()?;
    pg.start(free_port()?, signals).await?;
    pg.ensure_database(SERVER_DATABASE)?;
    eprintln!("xtask: throwaway PostgreSQL on port {} (in {})", pg.port(), dir.path().display());

    let server = Server { binary, database_url: pg.url(SERVER_DATABASE), keys: encryption_keys() };
    let migrated = process::run(&mut server.command(&["migrate"]), signals).await?;
    process::check_status(migrated, "`llm-analytics migrate`")?;
    signals.check()?;
    let BenchProject { id: project_id, token: project_token, personal_key } =
        BenchProject::create(&server, "Bench project", "bench@example.com")?;

    let fake_openai = FakeOpenai::start().await?;
    let serve = serve_command(&server, &fake_openai, &[]);
    let mut running = RunningServer::start(serve, signals).await?;
    eprintln!("xtask: llm-analytics (release) at {}", running.base_url);

    let setup = Setup {
        server: &server,
        pg: &pg,
        dir: dir.path(),
        base_url: &running.base_url,
        project_id: &project_id,
        personal_key: &personal_key,
        project_token: &project_token,
        fake_openai: &fake_openai,
    };
    let mut report = Report::default();
    if args.runs(Part::Reads) {
        report.add(provider_key_reads::run(&setup, args, signals).await?);
    }
    if args.runs(Part::Ingest) {
        for measured in ingestion::run(&setup, args, signals).await? {
            report.add(measured);
        }
    }
    if args.runs(Part::Offline) {
        report.add(offline_items::run(&setup, args, signals).await?);
    }
    if args.runs(Part::Summary) {
        for measured in summary::run(&setup, args, signals).await? {
            report.add(measured);
        }
    }
    if args.runs(Part::Otel) {
        report.add(otel::run(&setup, args, signals).await?);
    }
    if args.runs(Part::Reports) {
        for measured in reports::run(&setup, args, signals).await? {
            report.add(measured);
        }
    }
    if args.runs(Part::Judge) {
        let spawn_worker = || serve_command(&server, &fake_openai, &["--worker-only"]);
        for measured in judge::run(&setup, args, &spawn_worker, signals).await? {
            report.add(measured);
        }
    }
    if args.runs(Part::Code) {
        report.add(code_judge::run(&setup, args, signals).await?);
    }
    let peak_rss_kib = peak_rss_kib(running.pid).context("reading the server's VmHWM")?;
    if args.runs(Part::Burst) {
        // A server of its own: the burst's peak is measured against its own targets.
        let spawn_server = || serve_command(&server, &fake_openai, &[]);
        report.add(burst::run(&setup, args, &spawn_server, signals).await?);
    }
    running.stop().await?;
    fake_openai.stop();
    pg.stop()?;
    drop(dir);

    report.print(args, peak_rss_kib);
    report.exit_code()
}

/// `psql` connected over TCP as `postgres` to `database`, stopping at the first error, not
/// reading `~/.psqlrc`.
fn psql_command(pg: &LocalPostgres, database: &str) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::from(pg.client("psql"));
    cmd.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", "postgres", "-p"])
        .arg(pg.port().to_string())
        .args(["-d", database]);
    cmd
}

/// Runs `psql <args>` on the server's database and returns its stdout; on failure the error
/// carries its output.
async fn psql(pg: &LocalPostgres, args: &[&str], signals: &mut Signals) -> Result<String> {
    psql_in(pg, SERVER_DATABASE, args, signals).await
}

/// [`psql`] on `database`.
async fn psql_in(pg: &LocalPostgres, database: &str, args: &[&str], signals: &mut Signals) -> Result<String> {
    let mut cmd = psql_command(pg, database);
    cmd.args(args);
    let out = process::output(&mut cmd, signals).await?;
    let shown = args.join(" ");
    let shown: String = match shown.char_indices().nth(120) {
        Some((cut, _)) => format!("{}…", &shown[..cut]),
        None => shown,
    };
    checked_output(&out, &format!("`psql {shown}`"))?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The one value that `sql` returns (`psql -tA -c`), trimmed.
async fn psql_value(pg: &LocalPostgres, sql: &str, signals: &mut Signals) -> Result<String> {
    psql_value_in(pg, SERVER_DATABASE, sql, signals).await
}

/// [`psql_value`] on `database`.
async fn psql_value_in(pg: &LocalPostgres, database: &str, sql: &str, signals: &mut Signals) -> Result<String> {
    Ok(psql_in(pg, database, &["-tA", "-c", sql], signals).await?.trim().to_owned())
}

/// `method url` with `body` as JSON and `bearer` as the personal API key; the JSON answer,
/// or an error naming the URL, status and body.
async fn call_api(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    bearer: &str,
    body: &serde_json::Value,
) -> Result<serde_json::Value> {
    let response = client.request(method, url).bearer_auth(bearer).json(body).send().await.context(url.to_owned())?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if !status.is_success() {
        bail!("{url}: {status}: {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("{url} answered no JSON: {text}"))
}

/// Fails unless `out` is a success, with its output in the error.
fn checked_output(out: &Output, what: &str) -> Result<()> {
    if let Err(error) = process::check_status(out.status, what) {
        if error.downcast_ref::<Interrupted>().is_some() {
            return Err(error);
        }
        bail!("{error:#}:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// Runs `commands` at once, each in its own process group with its output captured, and
/// waits for all of them; a signal meanwhile is passed on to every one.
async fn run_parallel(commands: Vec<tokio::process::Command>, signals: &mut Signals) -> Result<Vec<Output>> {
    let mut pids = Vec::with_capacity(commands.len());
    let mut waits = Vec::with_capacity(commands.len());
    for mut cmd in commands {
        let child = crate::process::spawn_captured(&mut cmd)?;
        pids.push(child.id().context("the child has no process id")?);
        waits.push(tokio::spawn(child.wait_with_output()));
    }
    let mut outputs = Vec::with_capacity(waits.len());
    for mut wait in waits {
        let out = loop {
            tokio::select! {
                out = &mut wait => break out.context("waiting for a child")?.context("waiting for a child")?,
                sig = signals.recv() => pids.iter().for_each(|&pid| process::forward(sig, pid)),
            }
        };
        outputs.push(out);
    }
    Ok(outputs)
}
