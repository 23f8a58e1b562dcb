//! `cargo xtask bench`: the release server under load next to `pgbench -S`, on one
//! throwaway PostgreSQL.
//!
//! The load is `GET /api/environments/{project}/llm_analytics/provider_keys/{id}/` (bearer
//! auth, one indexed read and a decrypt-free answer) from N keep-alive connections; the
//! yardstick is `pgbench -S` (a primary-key SELECT) at the same concurrency on the same
//! cluster. Both share the machine's cores with their load generator, so only their ratio
//! means something.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use base64::Engine;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::dev::{Server, scalar, target_dir};
use crate::postgres::{Durability, LocalPostgres, PgBinaries, free_port};
use crate::process::{self, Interrupted, Sig, Signals, cargo_program};
use crate::test::TempDir;

/// The server's database, and the one `pgbench -i` fills.
const SERVER_DATABASE: &str = "bench";
const PGBENCH_DATABASE: &str = "bench_pg";
/// `pgbench -i -s`: 1 000 000 rows in `pgbench_accounts`.
const PGBENCH_SCALE: &str = "10";
/// How long the server may take to print its address.
const START_DEADLINE: Duration = Duration::from_secs(60);
/// How long the server may take to finish after SIGTERM.
const STOP_DEADLINE: Duration = Duration::from_secs(30);
/// The ratio server rps / pgbench tps we aim for.
const TARGET_RATIO: f64 = 0.5;

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Measured seconds, of the server load and of `pgbench -S` each.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    seconds: u64,
    /// Concurrent connections, of the HTTP load and of `pgbench -c` alike.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=1000))]
    connections: u64,
    /// Unmeasured seconds before each measurement.
    #[arg(long, default_value_t = 3)]
    warmup: u64,
}

/// Builds the release server, measures it and pgbench, prints the table; 0 when every
/// measured request succeeded.
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
    pg.ensure_database(PGBENCH_DATABASE)?;
    eprintln!("xtask: throwaway PostgreSQL on port {} (in {})", pg.port(), dir.path().display());

    let server = Server { binary, database_url: pg.url(SERVER_DATABASE), keys: encryption_keys() };
    let migrated = process::run(&mut server.command(&["migrate"]), signals).await?;
    process::check_status(migrated, "`llm-analytics migrate`")?;
    signals.check()?;
    let project = server.admin(&["create-project", "--name", "Bench project"])?;
    let project_id = scalar(&project["id"]).context("create-project printed no id")?;
    server.admin(&["create-user", "--email", "bench@example.com", "--project", &project_id, "--level", "admin"])?;
    let api_key =
        server.admin(&["create-api-key", "--email", "bench@example.com", "--scopes", "*", "--label", "bench"])?;
    let token = scalar(&api_key["key"]).context("create-api-key printed no key")?;

    let fake_openai = FakeOpenai::start().await?;
    let mut serve = server.command(&["serve"]);
    serve
        .env("LLMA_BIND", "127.0.0.1:0")
        .env("LLMA_OPENAI_BASE_URL", format!("http://{}/v1", fake_openai.address))
        .env("RUST_LOG", "warn");
    let mut running = RunningServer::start(serve, signals).await?;
    eprintln!("xtask: llm-analytics (release) at {}", running.base_url);

    let client = http_client(args.connections)?;
    let base = format!("{}/api/environments/{project_id}/llm_analytics/provider_keys/", running.base_url);
    let key_id = create_provider_key(&client, &base, &token).await?;
    let url = format!("{base}{key_id}/");
    eprintln!(
        "xtask: load: GET {url}, {} connections, {}s warm-up + {}s measured",
        args.connections, args.warmup, args.seconds
    );
    let load = tokio::select! {
        load = http_load(&client, &url, &token, args) => load?,
        sig = signals.recv() => return Err(Interrupted(sig).into()),
    };
    let peak_rss_kib = peak_rss_kib(running.pid).context("reading the server's VmHWM")?;
    running.stop().await?;
    fake_openai.stop();

    eprintln!("xtask: pgbench -i -s {PGBENCH_SCALE} {PGBENCH_DATABASE}");
    pgbench(&pg, &["-i", "-q", "-s", PGBENCH_SCALE].map(str::to_owned), signals).await?;
    let connections = args.connections.to_string();
    let jobs = args.connections.min(2).to_string();
    let select_only = |seconds: u64| -> Vec<String> {
        ["-S", "-c", &connections, "-j", &jobs, "-T", &seconds.to_string()].map(str::to_owned).to_vec()
    };
    if args.warmup > 0 {
        eprintln!("xtask: pgbench -S warm-up, {}s", args.warmup);
        pgbench(&pg, &select_only(args.warmup), signals).await?;
    }
    eprintln!("xtask: pgbench -S -c {connections} -j {jobs} -T {}", args.seconds);
    let out = pgbench(&pg, &select_only(args.seconds), signals).await?;
    let pgbench_tps =
        parse_tps(&out).with_context(|| format!("no `tps = N (without initial connection time)` in:\n{out}"))?;

    pg.stop()?;
    drop(dir);

    print_report(args, &load, pgbench_tps, peak_rss_kib);
    if load.ok == 0 {
        bail!("no request succeeded{}", load.first_error.map(|e| format!(" (first error: {e})")).unwrap_or_default());
    }
    if load.errors > 0 {
        eprintln!(
            "xtask: {} requests failed; the first: {}",
            load.errors,
            load.first_error.as_deref().unwrap_or("unknown")
        );
        return Ok(1);
    }
    Ok(0)
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
        .timeout(Duration::from_secs(30))
        .build()
        .context("building the HTTP client")
}

/// Creates the provider key the load reads, and returns its id.
async fn create_provider_key(client: &reqwest::Client, base: &str, token: &str) -> Result<String> {
    let body = json!({ "provider": "openai", "name": "bench", "api_key": "sk-bench-1234567890" });
    let response = client.post(base).bearer_auth(token).json(&body).send().await.context("POST provider_keys")?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if !status.is_success() {
        bail!("POST {base} answered {status}: {text}");
    }
    let created: Value = serde_json::from_str(&text).with_context(|| format!("POST {base} answered {text}"))?;
    scalar(&created["id"]).with_context(|| format!("POST {base} answered no id: {text}"))
}

/// What the measured window saw.
struct LoadResult {
    ok: u64,
    errors: u64,
    first_error: Option<String>,
    /// Latencies of the successful requests, in microseconds, sorted.
    latencies_us: Vec<u32>,
    elapsed: Duration,
}

impl LoadResult {
    fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
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
}

/// Runs `connections` tasks, each sending requests back to back, for the warm-up and then
/// the measured seconds; counts the requests that finish inside the measured window.
async fn http_load(client: &reqwest::Client, url: &str, token: &str, args: &BenchArgs) -> Result<LoadResult> {
    let measure_from = Instant::now() + Duration::from_secs(args.warmup);
    let measure_until = measure_from + Duration::from_secs(args.seconds);
    let url: Arc<str> = url.into();
    let auth: Arc<str> = format!("Bearer {token}").into();
    let tasks: Vec<_> = (0..args.connections)
        .map(|_| {
            let (client, url, auth) = (client.clone(), url.clone(), auth.clone());
            tokio::spawn(async move {
                let mut part = LoadResult {
                    ok: 0,
                    errors: 0,
                    first_error: None,
                    latencies_us: Vec::new(),
                    elapsed: Duration::ZERO,
                };
                loop {
                    let started = Instant::now();
                    if started >= measure_until {
                        break;
                    }
                    let outcome = match client.get(&*url).header("authorization", &*auth).send().await {
                        Ok(response) => {
                            let status = response.status();
                            match response.bytes().await {
                                Ok(_) if status == reqwest::StatusCode::OK => Ok(()),
                                Ok(body) => Err(format!("{status}: {}", String::from_utf8_lossy(&body))),
                                Err(error) => Err(format!("{status}, reading the body: {error}")),
                            }
                        }
                        Err(error) => Err(format!("{error:#}")),
                    };
                    let finished = Instant::now();
                    if finished < measure_from || finished >= measure_until {
                        continue;
                    }
                    match outcome {
                        Ok(()) => {
                            part.ok += 1;
                            let us = (finished - started).as_micros();
                            part.latencies_us.push(u32::try_from(us).unwrap_or(u32::MAX));
                        }
                        Err(error) => {
                            part.errors += 1;
                            part.first_error.get_or_insert(error);
                        }
                    }
                }
                part
            })
        })
        .collect();
    let mut total = LoadResult {
        ok: 0,
        errors: 0,
        first_error: None,
        latencies_us: Vec::new(),
        elapsed: measure_until - measure_from,
    };
    for task in tasks {
        let part = task.await.context("a load task failed")?;
        total.ok += part.ok;
        total.errors += part.errors;
        if total.first_error.is_none() {
            total.first_error = part.first_error;
        }
        total.latencies_us.extend(part.latencies_us);
    }
    total.latencies_us.sort_unstable();
    Ok(total)
}

/// The peak resident set size (`VmHWM`) of process `pid`, in KiB.
fn peak_rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find_map(|line| line.strip_prefix("VmHWM:")).context("no VmHWM line")?;
    let kib = line.trim().trim_end_matches("kB").trim();
    kib.parse().with_context(|| format!("VmHWM is `{line}`"))
}

/// Runs `pgbench <args> -h 127.0.0.1 -p PORT -U postgres bench_pg` and returns its output
/// (stdout, then stderr).
async fn pgbench(pg: &LocalPostgres, args: &[String], signals: &mut Signals) -> Result<String> {
    let port = pg.port().to_string();
    let mut cmd = tokio::process::Command::from(pg.client("pgbench"));
    cmd.args(args).args(["-h", "127.0.0.1", "-p", &port, "-U", "postgres", PGBENCH_DATABASE]);
    let out = process::output(&mut cmd, signals).await?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if let Err(error) = process::check_status(out.status, &format!("`pgbench {}`", args.join(" "))) {
        if error.downcast_ref::<Interrupted>().is_some() {
            return Err(error);
        }
        bail!("{error:#}:\n{text}");
    }
    Ok(text)
}

/// The number in `tps = N (without initial connection time)`.
fn parse_tps(output: &str) -> Option<f64> {
    output.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("tps = ")?;
        let (number, note) = rest.split_once(' ')?;
        note.contains("without initial connection time").then(|| number.parse().ok()).flatten()
    })
}

fn print_report(args: &BenchArgs, load: &LoadResult, pgbench_tps: f64, peak_rss_kib: u64) {
    let ms = |d: Option<Duration>| d.map_or_else(|| "-".to_owned(), |d| format!("{:.2} ms", d.as_secs_f64() * 1e3));
    let ratio = load.rps() / pgbench_tps;
    let verdict = if ratio >= TARGET_RATIO { "met" } else { "NOT met" };
    println!();
    println!(
        "llm-analytics bench: {} connections, {}s measured after {}s warm-up",
        args.connections, args.seconds, args.warmup
    );
    println!("  {:<34} {:>14}", "metric", "value");
    println!("  {:<34} {:>14.0}", "server requests/s (200 only)", load.rps());
    println!("  {:<34} {:>14}", "server p50 latency", ms(load.percentile(50.0)));
    println!("  {:<34} {:>14}", "server p99 latency", ms(load.percentile(99.0)));
    println!("  {:<34} {:>14}", "server errors (non-200)", load.errors);
    println!("  {:<34} {:>14.0}", "pgbench -S tps", pgbench_tps);
    println!("  {:<34} {:>14.3}", "server rps / pgbench tps", ratio);
    println!("  {:<34} {:>14}", format!("target >= {TARGET_RATIO}"), verdict);
    println!("  {:<34} {:>14.1}", "server peak RSS (VmHWM), MiB", peak_rss_kib as f64 / 1024.0);
    println!();
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{LoadResult, parse_tps};

    #[test]
    fn parse_tps_reads_the_line_without_connection_time() {
        let output = "latency average = 1.234 ms\ninitial connection time = 12.3 ms\n\
                      tps = 25934.123456 (without initial connection time)\n";
        assert_eq!(parse_tps(output), Some(25934.123456));
        assert_eq!(parse_tps("tps = 10.0 (including connections establishing)\n"), None);
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let load = LoadResult {
            ok: 100,
            errors: 0,
            first_error: None,
            latencies_us: (1..=100).collect(),
            elapsed: Duration::from_secs(1),
        };
        assert_eq!(load.percentile(50.0), Some(Duration::from_micros(50)));
        assert_eq!(load.percentile(99.0), Some(Duration::from_micros(99)));
        assert_eq!(load.percentile(100.0), Some(Duration::from_micros(100)));
    }
}
