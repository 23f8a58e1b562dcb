//! `cargo xtask bench`: the release server under load next to PostgreSQL doing the same
//! work by itself, on one throwaway cluster.
//!
//! Three measurements, each beside its yardstick (both share the machine's cores with their
//! load generator, so only the ratio means something):
//!
//! - **reads** ([`provider_key_reads`]): `GET provider_keys/{id}/` from N keep-alive
//!   connections, beside `pgbench -S` at the same concurrency;
//! - **ingest** ([`ingestion`]): `$ai_evaluation` events through `POST /batch/`, beside
//!   `COPY` of the same rows into the same tables;
//! - **offline** ([`offline_items`]): `offline_evaluations/experiment_items/` over a million
//!   stored events, beside the adapter's SQL run by `psql`.

mod ingestion;
mod offline_items;
mod provider_key_reads;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::dev::{Server, scalar, target_dir};
use crate::postgres::{Durability, LocalPostgres, PgBinaries, free_port};
use crate::process::{self, Interrupted, Sig, Signals, cargo_program};
use crate::test::TempDir;

/// The server's database (the ingestion and offline measurements use it too).
const SERVER_DATABASE: &str = "bench";
/// How long the server may take to print its address.
const START_DEADLINE: Duration = Duration::from_secs(60);
/// How long the server may take to finish after SIGTERM.
const STOP_DEADLINE: Duration = Duration::from_secs(30);

/// One measurement of the bench.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    /// `GET provider_keys/{id}/` beside `pgbench -S`.
    Reads,
    /// `POST /batch/` of `$ai_evaluation` events beside `COPY` of the same rows.
    Ingest,
    /// `offline_evaluations/experiment_items/` beside its SQL in psql.
    Offline,
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
    /// offline: events stored before the query is timed.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(10_000..))]
    seed_events: u64,
    /// offline: items of the benchmarked experiment (each with 3 metrics).
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(1..=6_000))]
    items: u64,
    /// offline: timed requests (and timed psql executions), after the warm-up ones.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    requests: u64,
    /// offline: unmeasured requests (and psql executions) first.
    #[arg(long, default_value_t = 3)]
    warmup_requests: u64,
}

impl BenchArgs {
    fn runs(&self, part: Part) -> bool {
        self.only.is_empty() || self.only.contains(&part)
    }
}

/// What a bench run knows about its server and cluster; every measurement gets it.
pub(super) struct Setup<'a> {
    pg: &'a LocalPostgres,
    /// A folder for data files, deleted after the run.
    dir: &'a Path,
    base_url: &'a str,
    project_id: &'a str,
    /// A personal API key with every scope.
    personal_key: &'a str,
    /// The project's public token (`phc_…`), for capture.
    project_token: &'a str,
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
    let project = server.admin(&["create-project", "--name", "Bench project"])?;
    let project_id = scalar(&project["id"]).context("create-project printed no id")?;
    let project_token = scalar(&project["api_token"]).context("create-project printed no api_token")?;
    server.admin(&["create-user", "--email", "bench@example.com", "--project", &project_id, "--level", "admin"])?;
    let api_key =
        server.admin(&["create-api-key", "--email", "bench@example.com", "--scopes", "*", "--label", "bench"])?;
    let personal_key = scalar(&api_key["key"]).context("create-api-key printed no key")?;

    let fake_openai = FakeOpenai::start().await?;
    let mut serve = server.command(&["serve"]);
    serve
        .env("LLMA_BIND", "127.0.0.1:0")
        .env("LLMA_OPENAI_BASE_URL", format!("http://{}/v1", fake_openai.address))
        .env("RUST_LOG", "warn");
    let mut running = RunningServer::start(serve, signals).await?;
    eprintln!("xtask: llm-analytics (release) at {}", running.base_url);

    let setup = Setup {
        pg: &pg,
        dir: dir.path(),
        base_url: &running.base_url,
        project_id: &project_id,
        personal_key: &personal_key,
        project_token: &project_token,
    };
    let mut report = Report::default();
    if args.runs(Part::Reads) {
        report.add(provider_key_reads::run(&setup, args, signals).await?);
    }
    if args.runs(Part::Ingest) {
        report.add(ingestion::run(&setup, args, signals).await?);
    }
    if args.runs(Part::Offline) {
        report.add(offline_items::run(&setup, args, signals).await?);
    }
    let peak_rss_kib = peak_rss_kib(running.pid).context("reading the server's VmHWM")?;
    running.stop().await?;
    fake_openai.stop();
    pg.stop()?;
    drop(dir);

    report.print(args, peak_rss_kib);
    report.exit_code()
}

/// What one measurement found: its lines of the table, its line of the Markdown summary,
/// and how many requests failed.
pub(super) struct Measured {
    /// The section's title in the table.
    title: String,
    /// (metric, value) lines.
    lines: Vec<(String, String)>,
    summary: SummaryRow,
    errors: u64,
    first_error: Option<String>,
}

/// One row of the Markdown summary.
pub(super) struct SummaryRow {
    measurement: String,
    server: String,
    yardstick: String,
    ratio: String,
    /// e.g. `≥ 0.5`, and whether it was met.
    target: String,
    met: bool,
}

#[derive(Default)]
struct Report {
    parts: Vec<Measured>,
}

impl Report {
    fn add(&mut self, measured: Measured) {
        self.parts.push(measured);
    }

    fn print(&self, args: &BenchArgs, peak_rss_kib: u64) {
        let width = self.parts.iter().flat_map(|p| p.lines.iter().map(|(m, _)| m.chars().count())).max().unwrap_or(0);
        let width = width.max(34);
        println!();
        println!("llm-analytics bench: {}s measured after {}s warm-up, {} cores", args.seconds, args.warmup, cores());
        println!("  {:<width$} {:>18}", "metric", "value");
        for part in &self.parts {
            println!("  [{}]", part.title);
            for (metric, value) in &part.lines {
                println!("  {metric:<width$} {value:>18}");
            }
        }
        println!("  [server]");
        println!("  {:<width$} {:>18.1}", "peak RSS (VmHWM) over the run, MiB", peak_rss_kib as f64 / 1024.0);
        println!();
        println!("Markdown for the README:");
        println!();
        println!("| measurement | llm-analytics | PostgreSQL alone | ratio | target |");
        println!("|---|---|---|---|---|");
        for part in &self.parts {
            let s = &part.summary;
            let verdict = if s.met { "met" } else { "**not met**" };
            println!("| {} | {} | {} | {} | {} ({verdict}) |", s.measurement, s.server, s.yardstick, s.ratio, s.target);
        }
        println!();
        println!(
            "Release build, throwaway PostgreSQL (fsync off) on the same {}-core machine as the load \
             generator; server peak RSS {:.0} MiB.",
            cores(),
            peak_rss_kib as f64 / 1024.0
        );
        println!();
    }

    fn exit_code(&self) -> Result<u8> {
        let mut code = 0;
        for part in &self.parts {
            if part.errors > 0 {
                eprintln!(
                    "xtask: {}: {} requests failed; the first: {}",
                    part.title,
                    part.errors,
                    part.first_error.as_deref().unwrap_or("unknown")
                );
                code = 1;
            }
        }
        Ok(code)
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// A fresh `LLMA_ENCRYPTION_KEYS` value for this run.
fn encryption_keys() -> String {
    let mut secret = [0u8; 32];
    rand::fill(&mut secret);
    format!("bench1:{}", base64::engine::general_purpose::STANDARD.encode(secret))
}

/// The answer of every request to the fake OpenAI: an empty model list.
const MODELS_RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 27\r\n\
connection: close\r\n\r\n{\"object\":\"list\",\"data\":[]}";

/// A stand-in for `https://api.openai.com`, for the live check of a new provider key.
struct FakeOpenai {
    address: SocketAddr,
    task: JoinHandle<()>,
}

impl FakeOpenai {
    async fn start() -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await.context("binding the fake OpenAI")?;
        let address = listener.local_addr()?;
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    // Read the request head first, so closing does not reset the connection.
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = stream.write_all(MODELS_RESPONSE).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Ok(Self { address, task })
    }

    fn stop(self) {
        self.task.abort();
    }
}

/// `llm-analytics serve`, stopped with SIGTERM when dropped.
struct RunningServer {
    child: tokio::process::Child,
    pid: u32,
    base_url: String,
}

impl RunningServer {
    /// Starts `serve` in its own process group and waits for its `listening on` line.
    async fn start(mut serve: tokio::process::Command, signals: &mut Signals) -> Result<Self> {
        serve.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit()).process_group(0);
        let mut child = serve.spawn().context("starting `llm-analytics serve`")?;
        let pid = child.id().context("the server has no process id")?;
        let stdout = child.stdout.take().context("the server's stdout is not piped")?;
        let mut server = Self { child, pid, base_url: String::new() };
        let mut lines = BufReader::new(stdout).lines();
        let deadline = tokio::time::sleep(START_DEADLINE);
        tokio::pin!(deadline);
        loop {
            let line = tokio::select! {
                line = lines.next_line() => line.context("reading the server's stdout")?,
                status = server.child.wait() => bail!("`llm-analytics serve` exited while starting ({})", status?),
                () = &mut deadline => bail!("`llm-analytics serve` printed no address within {START_DEADLINE:?}"),
                sig = signals.recv() => return Err(Interrupted(sig).into()),
            };
            let Some(line) = line else {
                bail!("`llm-analytics serve` closed its stdout without printing its address");
            };
            if let Some(url) = line.trim().strip_prefix("llm-analytics listening on ") {
                server.base_url = url.trim_end_matches('/').to_owned();
                break;
            }
        }
        // Keep reading, so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(server)
    }

    /// Sends SIGTERM and waits for the server to finish (SIGKILL after [`STOP_DEADLINE`]).
    async fn stop(&mut self) -> Result<ExitStatus> {
        if let Some(status) = self.child.try_wait()? {
            return Ok(status);
        }
        process::forward(Sig::Term, self.pid);
        match tokio::time::timeout(STOP_DEADLINE, self.child.wait()).await {
            Ok(status) => Ok(status?),
            Err(_) => {
                eprintln!("xtask: the server did not stop within {STOP_DEADLINE:?} of SIGTERM; killing it");
                self.child.kill().await?;
                Ok(self.child.wait().await?)
            }
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        process::forward(Sig::Term, self.pid);
        let deadline = Instant::now() + STOP_DEADLINE;
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("xtask: the server did not stop within {STOP_DEADLINE:?} of SIGTERM; killing it");
        let _ = self.child.start_kill();
    }
}

/// One keep-alive client whose pool holds a connection per load task.
fn http_client(connections: u64) -> Result<reqwest::Client> {
    // reqwest is built with `rustls-no-provider`; plain http needs none, but building a
    // client wants one installed. It fails harmlessly when one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(usize::try_from(connections)?)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(60))
        .build()
        .context("building the HTTP client")
}

/// What a timed window of requests saw.
#[derive(Debug)]
struct LoadResult {
    /// Successful requests.
    ok: u64,
    /// What the successful requests carried (events, for ingestion; else = `ok`).
    items: u64,
    errors: u64,
    first_error: Option<String>,
    /// Latencies of the successful requests, in microseconds, sorted.
    latencies_us: Vec<u32>,
    elapsed: Duration,
}

impl LoadResult {
    fn empty(elapsed: Duration) -> Self {
        Self { ok: 0, items: 0, errors: 0, first_error: None, latencies_us: Vec::new(), elapsed }
    }

    /// Counts one request that finished inside the window, `started` to `finished`.
    fn record(&mut self, outcome: Result<u64, String>, started: Instant, finished: Instant) {
        match outcome {
            Ok(items) => {
                self.ok += 1;
                self.items += items;
                let us = (finished - started).as_micros();
                self.latencies_us.push(u32::try_from(us).unwrap_or(u32::MAX));
            }
            Err(error) => {
                self.errors += 1;
                self.first_error.get_or_insert(error);
            }
        }
    }

    fn merge(&mut self, part: LoadResult) {
        self.ok += part.ok;
        self.items += part.items;
        self.errors += part.errors;
        if self.first_error.is_none() {
            self.first_error = part.first_error;
        }
        self.latencies_us.extend(part.latencies_us);
        self.latencies_us.sort_unstable();
    }

    fn per_second(&self, count: u64) -> f64 {
        count as f64 / self.elapsed.as_secs_f64()
    }

    /// The nearest-rank percentile `p` (0..=100) of the latencies.
    fn percentile(&self, p: f64) -> Option<Duration> {
        let n = self.latencies_us.len();
        if n == 0 {
            return None;
        }
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        Some(Duration::from_micros(u64::from(self.latencies_us[rank.clamp(1, n) - 1])))
    }

    fn mean(&self) -> Option<Duration> {
        let n = self.latencies_us.len() as u64;
        let sum: u64 = self.latencies_us.iter().map(|&us| u64::from(us)).sum();
        (n > 0).then(|| Duration::from_micros(sum / n))
    }
}

/// `12.34 ms`, or `-`.
fn ms(duration: Option<Duration>) -> String {
    duration.map_or_else(|| "-".to_owned(), |d| format!("{:.2} ms", d.as_secs_f64() * 1e3))
}

/// An integer with thin separators: `1,234,567`.
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if value < 0.0 && digits != "0" { format!("-{out}") } else { out }
}

/// The peak resident set size (`VmHWM`) of process `pid`, in KiB.
fn peak_rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find_map(|line| line.strip_prefix("VmHWM:")).context("no VmHWM line")?;
    let kib = line.trim().trim_end_matches("kB").trim();
    kib.parse().with_context(|| format!("VmHWM is `{line}`"))
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
    let mut cmd = psql_command(pg, SERVER_DATABASE);
    cmd.args(args);
    let out = process::output(&mut cmd, signals).await?;
    checked_output(&out, &format!("`psql {}`", args.join(" ")))?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The one value that `sql` returns (`psql -tA -c`), trimmed.
async fn psql_value(pg: &LocalPostgres, sql: &str, signals: &mut Signals) -> Result<String> {
    Ok(psql(pg, &["-tA", "-c", sql], signals).await?.trim().to_owned())
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
        let program = cmd.as_std().get_program().to_string_lossy().into_owned();
        let child = cmd
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {program}"))?;
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{LoadResult, thousands};

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let load = LoadResult { latencies_us: (1..=100).collect(), ..LoadResult::empty(Duration::from_secs(1)) };
        assert_eq!(load.percentile(50.0), Some(Duration::from_micros(50)));
        assert_eq!(load.percentile(99.0), Some(Duration::from_micros(99)));
        assert_eq!(load.percentile(100.0), Some(Duration::from_micros(100)));
        assert_eq!(load.mean(), Some(Duration::from_micros(50)));
        assert_eq!(LoadResult::empty(Duration::from_secs(1)).percentile(50.0), None);
    }

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
        assert_eq!(thousands(-12_345.0), "-12,345");
    }
}
