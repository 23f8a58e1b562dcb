//! reads: `GET /api/environments/{project}/llm_analytics/provider_keys/{id}/` (bearer auth,
//! one indexed read and a decrypt-free answer) from N keep-alive connections, beside
//! `pgbench -S` (a primary-key SELECT) at the same concurrency on the same cluster.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::load::{closed_loop, ok_body};
use super::{BenchArgs, LoadResult, Measured, Setup, SummaryRow, checked_output, http_client, ms, thousands};
use crate::dev::scalar;
use crate::postgres::LocalPostgres;
use crate::process::{self, Interrupted, Signals};

/// The database `pgbench -i` fills.
const PGBENCH_DATABASE: &str = "bench_pg";
/// `pgbench -i -s`: 1 000 000 rows in `pgbench_accounts`.
const PGBENCH_SCALE: &str = "10";
/// The C load generator the issue names (Debian's package).
const WRK: &str = "/usr/bin/wrk";
/// The ratio server rps / pgbench tps we aim for.
const TARGET_RATIO: f64 = 0.6;

pub(super) async fn run(setup: &Setup<'_>, args: &BenchArgs, signals: &mut Signals) -> Result<Measured> {
    let client = http_client(args.connections)?;
    let base = format!("{}/api/environments/{}/llm_analytics/provider_keys/", setup.base_url, setup.project_id);
    let key_id = create_provider_key(&client, &base, setup.personal_key).await?;
    let url = format!("{base}{key_id}/");
    eprintln!(
        "xtask: reads: GET {url}, {} connections, {}s warm-up + {}s measured",
        args.connections, args.warmup, args.seconds
    );
    let load = tokio::select! {
        load = http_load(&client, &url, setup.personal_key, args) => load?,
        sig = signals.recv() => return Err(Interrupted(sig).into()),
    };
    if load.ok == 0 {
        bail!("no request succeeded{}", load.first_error.map(|e| format!(" (first error: {e})")).unwrap_or_default());
    }
    let wrk = wrk_load(&url, setup.personal_key, args, signals).await?;

    setup.pg.ensure_database(PGBENCH_DATABASE)?;
    eprintln!("xtask: pgbench -i -s {PGBENCH_SCALE} {PGBENCH_DATABASE}");
    pgbench(setup.pg, &["-i", "-q", "-s", PGBENCH_SCALE].map(str::to_owned), signals).await?;
    let connections = args.connections.to_string();
    let jobs = args.connections.min(2).to_string();
    let select_only = |seconds: u64| -> Vec<String> {
        ["-S", "-c", &connections, "-j", &jobs, "-T", &seconds.to_string()].map(str::to_owned).to_vec()
    };
    if args.warmup > 0 {
        eprintln!("xtask: pgbench -S warm-up, {}s", args.warmup);
        pgbench(setup.pg, &select_only(args.warmup), signals).await?;
    }
    // pgbench's figure swings by a fifth between runs on this shared machine: the better of
    // two runs is the yardstick, so noise can only make the ratio look worse.
    let mut pgbench_tps: f64 = 0.0;
    for _ in 0..2 {
        eprintln!("xtask: pgbench -S -c {connections} -j {jobs} -T {}", args.seconds);
        let out = pgbench(setup.pg, &select_only(args.seconds), signals).await?;
        let tps =
            parse_tps(&out).with_context(|| format!("no `tps = N (without initial connection time)` in:\n{out}"))?;
        pgbench_tps = pgbench_tps.max(tps);
    }

    let rps = load.per_second(load.ok);
    let ratio = rps / pgbench_tps;
    let mut lines = vec![
        ("server requests/s (200 only)".to_owned(), thousands(rps)),
        ("server p50 latency".to_owned(), ms(load.percentile(50.0))),
        ("server p99 latency".to_owned(), ms(load.percentile(99.0))),
        ("server errors (non-200)".to_owned(), load.errors.to_string()),
    ];
    if let Some(wrk) = &wrk {
        lines.push(("server requests/s with wrk (C client)".to_owned(), thousands(wrk.requests_per_second)));
        lines.push(("wrk non-2xx responses".to_owned(), wrk.non_2xx.to_string()));
    }
    lines.push(("pgbench -S tps (better of two runs)".to_owned(), thousands(pgbench_tps)));
    lines.push(("server rps / pgbench tps".to_owned(), format!("{ratio:.3}")));
    let wrk_ratio = wrk.as_ref().map(|w| w.requests_per_second / pgbench_tps);
    if let Some(wrk_ratio) = wrk_ratio {
        lines.push(("server rps with wrk / pgbench tps".to_owned(), format!("{wrk_ratio:.3}")));
    }
    // pgbench's client is C; so is wrk's. When wrk is installed its figure is the fair one.
    let best = wrk_ratio.unwrap_or(ratio);
    Ok(Measured::of_load(
        format!("reads: GET provider_keys/{{id}}/, {} connections", args.connections),
        lines,
        SummaryRow::ratio_at_least(
            format!("provider-key read, {} connections", args.connections),
            match &wrk {
                Some(wrk) => format!(
                    "{} req/s with `wrk` ({} req/s with the Rust client, p50 {}, p99 {})",
                    thousands(wrk.requests_per_second),
                    thousands(rps),
                    ms(load.percentile(50.0)),
                    ms(load.percentile(99.0))
                ),
                None => format!(
                    "{} req/s (p50 {}, p99 {})",
                    thousands(rps),
                    ms(load.percentile(50.0)),
                    ms(load.percentile(99.0))
                ),
            },
            format!("`pgbench -S` {} tps", thousands(pgbench_tps)),
            best,
            TARGET_RATIO,
        ),
        load,
    ))
}

/// Creates the provider key the load reads, and returns its id.
pub(super) async fn create_provider_key(client: &reqwest::Client, base: &str, token: &str) -> Result<String> {
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

/// `connections` workers reading the key back to back (the shared closed loop).
async fn http_load(client: &reqwest::Client, url: &str, token: &str, args: &BenchArgs) -> Result<LoadResult> {
    let url: Arc<str> = url.into();
    let auth: Arc<str> = format!("Bearer {token}").into();
    let client = client.clone();
    closed_loop(args.connections, args, move |_, _| {
        let sent = client.get(&*url).header("authorization", &*auth).send();
        Some(async move { ok_body(sent.await).await.map(|_| 1) })
    })
    .await
    .map(|load| load.result)
}

/// What `wrk` measured.
struct WrkResult {
    requests_per_second: f64,
    non_2xx: u64,
}

/// The same load from `wrk` (a C load generator, Debian package `wrk`) when it is installed;
/// `None` when it is not.
async fn wrk_load(url: &str, token: &str, args: &BenchArgs, signals: &mut Signals) -> Result<Option<WrkResult>> {
    if !crate::packages::ensure(WRK, "wrk", "the reads measurement with wrk") {
        eprintln!("xtask: reads: without `wrk` only the Rust client measures");
        return Ok(None);
    }
    let threads = args.connections.clamp(1, 2).to_string();
    let connections = args.connections.to_string();
    let auth = format!("Authorization: Bearer {token}");
    let mut last = None;
    for seconds in [args.warmup, args.seconds].into_iter().filter(|s| *s > 0) {
        eprintln!("xtask: reads: wrk -t{threads} -c{connections} -d{seconds}s");
        let mut wrk = tokio::process::Command::new(WRK);
        wrk.args(["-t", &threads, "-c", &connections, "-d", &format!("{seconds}s"), "-H", &auth, url]);
        let out = process::output(&mut wrk, signals).await?;
        checked_output(&out, "wrk")?;
        last = Some(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let out = last.context("wrk ran for no measured seconds")?;
    let requests_per_second =
        parse_wrk_rps(&out).with_context(|| format!("no `Requests/sec:` line in wrk's output:\n{out}"))?;
    Ok(Some(WrkResult { requests_per_second, non_2xx: parse_wrk_non_2xx(&out) }))
}

fn parse_wrk_rps(output: &str) -> Option<f64> {
    output.lines().find_map(|line| line.trim().strip_prefix("Requests/sec:")?.trim().parse().ok())
}

fn parse_wrk_non_2xx(output: &str) -> u64 {
    output
        .lines()
        .find_map(|line| line.trim().strip_prefix("Non-2xx or 3xx responses:")?.trim().parse().ok())
        .unwrap_or(0)
}

/// Runs `pgbench <args> -h 127.0.0.1 -p PORT -U postgres bench_pg` and returns its output
/// (stdout, then stderr).
async fn pgbench(pg: &LocalPostgres, args: &[String], signals: &mut Signals) -> Result<String> {
    let port = pg.port().to_string();
    let mut cmd = tokio::process::Command::from(pg.client("pgbench"));
    cmd.args(args).args(["-h", "127.0.0.1", "-p", &port, "-U", "postgres", PGBENCH_DATABASE]);
    let out = process::output(&mut cmd, signals).await?;
    checked_output(&out, &format!("`pgbench {}`", args.join(" ")))?;
    Ok(format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// The number in `tps = N (without initial connection time)`.
fn parse_tps(output: &str) -> Option<f64> {
    output.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("tps = ")?;
        let (number, note) = rest.split_once(' ')?;
        note.contains("without initial connection time").then(|| number.parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::parse_tps;

    #[test]
    fn wrk_output_is_read() {
        let out = "Running 8s test @ http://x/\n  85426 requests in 8.02s, 51.73MB read\n  Non-2xx or 3xx responses: 3\nRequests/sec:  10646.22\n";
        assert_eq!(super::parse_wrk_rps(out), Some(10646.22));
        assert_eq!(super::parse_wrk_non_2xx(out), 3);
        assert_eq!(super::parse_wrk_non_2xx("Requests/sec: 1"), 0);
    }

    #[test]
    fn parse_tps_reads_the_line_without_connection_time() {
        let output = "latency average = 1.234 ms\ninitial connection time = 12.3 ms\n\
                      tps = 25934.123456 (without initial connection time)\n";
        assert_eq!(parse_tps(output), Some(25934.123456));
        assert_eq!(parse_tps("tps = 10.0 (including connections establishing)\n"), None);
    }
}
