//! burst: `--burst-requests` concurrent `POST /batch/` of ~18.5 MB each (9 000 events of
//! ~2 KB) against a server of its own, every 503 retried after its `Retry-After` as the
//! SDKs do; `--burst-runs` times, each against a fresh server. Measures that every event
//! is stored, the server's peak RSS, and its RSS 30 s after the burst (memory given back),
//! in every run; and what the burst does to the read path: `GET provider_keys/{id}/` on
//! [`READERS`] connections, back to back, before the burst (quiet) and while it lasts.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::ingestion::{iso8601_millis, unix_millis, write_generation};
use super::load::ok_body;
use super::provider_key_reads::create_provider_key;
use super::report::{LoadResult, ms};
use super::server::{RunningServer, current_rss_kib, peak_rss_kib};
use super::{BenchArgs, Measured, Setup, SummaryRow, http_client, psql_value, thousands};
use crate::process::{Interrupted, Signals};

/// Events per request, and the padding that makes each event ~2 KB.
const EVENTS_PER_REQUEST: usize = 9_000;
const PADDING: usize = 1_600;
/// The targets: peak RSS during the burst, RSS 30 s after it (MiB).
const PEAK_TARGET_MIB: f64 = 400.0;
const AFTER_TARGET_MIB: f64 = 120.0;
/// How long after the burst the resident set is read.
const SETTLE: Duration = Duration::from_secs(30);
/// How long the whole burst may take, retries included.
const DEADLINE: Duration = Duration::from_secs(600);
/// Connections reading a provider key back to back, before and during the burst.
const READERS: usize = 4;
/// How long the reads are measured before the burst.
const QUIET: Duration = Duration::from_secs(5);

pub(super) async fn run(
    setup: &Setup<'_>,
    args: &BenchArgs,
    spawn_server: &dyn Fn() -> tokio::process::Command,
    signals: &mut Signals,
) -> Result<Measured> {
    let requests = usize::try_from(args.burst_requests)?;
    // A project of its own: the judge measurement's evaluations would otherwise queue a
    // judgement per generation, and the 30 s after the burst would measure that work.
    let project = setup.server.admin(&["create-project", "--name", "Burst project"])?;
    let token = crate::dev::scalar(&project["api_token"]).context("create-project printed no api_token")?;
    eprintln!("xtask: burst: building {requests} bodies of {EVENTS_PER_REQUEST} events");
    let bodies: Vec<Arc<Vec<u8>>> = (0..requests).map(|n| Arc::new(body(&token, n))).collect::<Vec<_>>();
    let mean_mb = bodies.iter().map(|b| b.len()).sum::<usize>() as f64 / requests as f64 / 1e6;
    let expected = (requests * EVENTS_PER_REQUEST) as u64;
    let keys = format!("{}/api/environments/{}/llm_analytics/provider_keys/", setup.base_url, setup.project_id);
    let key_id = create_provider_key(&http_client(1)?, &keys, setup.personal_key).await?;
    let reads = ReadProbe {
        path: format!("/api/environments/{}/llm_analytics/provider_keys/{key_id}/", setup.project_id),
        token: setup.personal_key.to_owned(),
    };

    let mut runs = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for number in 1..=args.burst_runs {
        eprintln!("xtask: burst: run {number} of {}", args.burst_runs);
        let run = one_burst(setup, args, &bodies, &reads, spawn_server, signals).await?;
        errors += run.errors;
        if first_error.is_none() {
            first_error = run.first_error.clone();
        }
        runs.push(run);
    }

    let all_stored = runs.iter().all(|run| run.stored == expected);
    let peak_mib = runs.iter().map(|run| run.peak_mib).fold(0.0, f64::max);
    let after_mib = runs.iter().map(|run| run.after_mib).fold(0.0, f64::max);
    let met = all_stored && peak_mib <= PEAK_TARGET_MIB && after_mib <= AFTER_TARGET_MIB;
    let worst_read_p99 = runs.iter().filter_map(|run| run.reads_during.percentile(99.0)).max();
    let quiet_read_p99 = runs.iter().filter_map(|run| run.reads_quiet.percentile(99.0)).max();
    let each = |figure: fn(&BurstRun) -> f64| runs.iter().map(|run| format!("{:.0}", figure(run))).collect::<Vec<_>>();
    let mut lines = Vec::new();
    for (number, run) in runs.iter().enumerate() {
        lines.push((
            format!("run {}: stored / sent, 503s retried, wall time", number + 1),
            format!(
                "{} / {}, {}, {:.1} s",
                thousands(run.stored as f64),
                thousands(expected as f64),
                run.retries,
                run.elapsed.as_secs_f64()
            ),
        ));
        lines.push((
            format!("run {}: server RSS before, peak (VmHWM), {}s after, MiB", number + 1, SETTLE.as_secs()),
            format!("{:.1}, {:.1}, {:.1}", run.before_mib, run.peak_mib, run.after_mib),
        ));
        for (when, reads) in [("before the burst", &run.reads_quiet), ("during the burst", &run.reads_during)] {
            lines.push((
                format!("run {}: key reads {when} ({READERS} connections): p50, p99, reads/s, errors", number + 1),
                format!(
                    "{}, {}, {}, {}",
                    ms(reads.percentile(50.0)),
                    ms(reads.percentile(99.0)),
                    thousands(reads.per_second(reads.ok)),
                    reads.errors
                ),
            ));
        }
    }
    Ok(Measured {
        title: format!(
            "burst: {requests} concurrent POST /batch/ of {mean_mb:.1} MB ({EVENTS_PER_REQUEST} events), {} runs",
            runs.len()
        ),
        lines,
        summary: SummaryRow {
            measurement: format!("{requests} concurrent 18.5 MB `POST /batch/` (memory bound), {} runs", runs.len()),
            server: format!(
                "{} of {} events stored in {} of {} runs; peak RSS {} MiB; {} MiB {}s later; key read p99 {} before, {} during (worst run)",
                thousands(expected as f64),
                thousands(expected as f64),
                runs.iter().filter(|run| run.stored == expected).count(),
                runs.len(),
                each(|run| run.peak_mib).join(" / "),
                each(|run| run.after_mib).join(" / "),
                SETTLE.as_secs(),
                ms(quiet_read_p99),
                ms(worst_read_p99)
            ),
            yardstick: "—".to_owned(),
            ratio: "—".to_owned(),
            target: format!(
                "all stored, peak ≤ {PEAK_TARGET_MIB:.0} MiB, ≤ {AFTER_TARGET_MIB:.0} MiB after, in every run"
            ),
            met,
        },
        notes: Vec::new(),
        errors,
        first_error,
    })
}

/// What one burst against a fresh server gave.
struct BurstRun {
    stored: u64,
    retries: u64,
    elapsed: Duration,
    before_mib: f64,
    peak_mib: f64,
    after_mib: f64,
    errors: u64,
    first_error: Option<String>,
    /// Key reads before the burst, and while it lasted.
    reads_quiet: LoadResult,
    reads_during: LoadResult,
}

/// The read the probe repeats.
struct ReadProbe {
    /// `provider_keys/{id}/` below the server's address.
    path: String,
    /// The personal API key.
    token: String,
}

impl ReadProbe {
    /// Starts [`READERS`] connections reading back to back until `stop` is set; their
    /// measurements when joined.
    fn start(&self, base_url: &str, stop: Arc<AtomicBool>) -> Result<tokio::task::JoinHandle<LoadResult>> {
        let client = http_client(READERS as u64)?;
        let url: Arc<str> = format!("{base_url}{}", self.path).into();
        let auth: Arc<str> = format!("Bearer {}", self.token).into();
        let started = Instant::now();
        let readers: Vec<_> = (0..READERS)
            .map(|_| {
                let (client, url, auth, stop) = (client.clone(), url.clone(), auth.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut part = LoadResult::empty(Duration::ZERO);
                    while !stop.load(Ordering::Relaxed) {
                        let sent = Instant::now();
                        let outcome = ok_body(client.get(&*url).header("authorization", &*auth).send().await).await;
                        part.record(outcome.map(|_| 1), sent, Instant::now());
                    }
                    part
                })
            })
            .collect();
        Ok(tokio::spawn(async move {
            let mut parts = Vec::with_capacity(readers.len());
            for reader in readers {
                parts.push(reader.await.unwrap_or_else(|_| LoadResult::empty(Duration::ZERO)));
            }
            let mut all = LoadResult::empty(started.elapsed());
            for part in parts {
                all.merge(part);
            }
            all
        }))
    }
}

/// Sends every body at once to a server of its own, waits [`SETTLE`] and reads its memory.
async fn one_burst(
    setup: &Setup<'_>,
    args: &BenchArgs,
    bodies: &[Arc<Vec<u8>>],
    reads: &ReadProbe,
    spawn_server: &dyn Fn() -> tokio::process::Command,
    signals: &mut Signals,
) -> Result<BurstRun> {
    psql_value(setup.pg, "TRUNCATE ai_events, ai_event_ids", signals).await?;
    let mut server = RunningServer::start(spawn_server(), signals).await?;
    let url = format!("{}/batch/", server.base_url);
    let before_kib = current_rss_kib(server.pid)?;
    let stop_quiet = Arc::new(AtomicBool::new(false));
    let quiet = reads.start(&server.base_url, stop_quiet.clone())?;
    tokio::select! {
        () = tokio::time::sleep(QUIET) => {}
        sig = signals.recv() => return Err(Interrupted(sig).into()),
    }
    stop_quiet.store(true, Ordering::Relaxed);
    let reads_quiet = quiet.await?;
    eprintln!("xtask: burst: {} concurrent POST {url}, {READERS} connections reading a key", bodies.len());
    let stop_reading = Arc::new(AtomicBool::new(false));
    let during = reads.start(&server.base_url, stop_reading.clone())?;
    let client = http_client(args.burst_requests)?;
    let started = Instant::now();
    let sends = bodies.iter().map(|body| {
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        tokio::spawn(async move { send_until_stored(&client, &url, body).await })
    });
    let all = futures_join(sends.collect());
    let outcomes = tokio::select! {
        outcomes = all => outcomes,
        sig = signals.recv() => return Err(Interrupted(sig).into()),
    };
    let elapsed = started.elapsed();
    stop_reading.store(true, Ordering::Relaxed);
    let reads_during = during.await?;
    drop(client);
    let mut retries = 0;
    let mut errors = 0;
    let mut first_error = None;
    for outcome in outcomes {
        match outcome {
            Ok(Ok(tries)) => retries += tries,
            Ok(Err(error)) | Err(error) => {
                errors += 1;
                first_error.get_or_insert(error);
            }
        }
    }
    let peak_kib = peak_rss_kib(server.pid)?;
    let stored: u64 = psql_value(setup.pg, "SELECT count(*) FROM ai_events", signals).await?.parse()?;
    eprintln!(
        "xtask: burst: done in {:.1} s; waiting {}s for the memory to settle",
        elapsed.as_secs_f64(),
        SETTLE.as_secs()
    );
    tokio::select! {
        () = tokio::time::sleep(SETTLE) => {}
        sig = signals.recv() => return Err(Interrupted(sig).into()),
    }
    let after_kib = current_rss_kib(server.pid)?;
    server.stop().await?;
    Ok(BurstRun {
        stored,
        retries,
        elapsed,
        before_mib: before_kib as f64 / 1024.0,
        peak_mib: peak_kib as f64 / 1024.0,
        after_mib: after_kib as f64 / 1024.0,
        errors,
        first_error,
        reads_quiet,
        reads_during,
    })
}

/// Waits for every task, in order.
async fn futures_join(
    tasks: Vec<tokio::task::JoinHandle<Result<u64, String>>>,
) -> Vec<Result<Result<u64, String>, String>> {
    let mut outcomes = Vec::with_capacity(tasks.len());
    for task in tasks {
        outcomes.push(task.await.map_err(|e| e.to_string()));
    }
    outcomes
}

/// Posts `body` until it is stored, waiting out each 503's `Retry-After`; returns how many
/// 503s it got.
async fn send_until_stored(client: &reqwest::Client, url: &str, body: Arc<Vec<u8>>) -> Result<u64, String> {
    let deadline = Instant::now() + DEADLINE;
    let mut retries = 0;
    loop {
        let response = client
            .post(url)
            .header("content-type", "application/json")
            .body(body.as_ref().clone())
            .send()
            .await
            .map_err(|e| format!("{e:#}"))?;
        let status = response.status();
        if status == reqwest::StatusCode::SERVICE_UNAVAILABLE && Instant::now() < deadline {
            let wait = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
                .ok_or("a 503 without a Retry-After in seconds")?;
            retries += 1;
            tokio::time::sleep(Duration::from_secs(wait)).await;
            continue;
        }
        let text = response.text().await.unwrap_or_default();
        if status != reqwest::StatusCode::OK {
            return Err(format!("{status}: {}", text.chars().take(300).collect::<String>()));
        }
        return Ok(retries);
    }
}

/// One request's body: a batch of [`EVENTS_PER_REQUEST`] `$ai_generation` events of ~2 KB.
fn body(token: &str, request: usize) -> Vec<u8> {
    let padding: String = "The quick brown fox jumps over the lazy dog. ".chars().cycle().take(PADDING).collect();
    let mut out = String::with_capacity(EVENTS_PER_REQUEST * 2_100);
    let _ = write!(out, "{{\"api_key\":\"{token}\",\"sent_at\":\"{}\",\"batch\":[", iso8601_millis(unix_millis()));
    for n in 0..EVENTS_PER_REQUEST {
        if n > 0 {
            out.push(',');
        }
        let distinct_id = format!("burst-{request}-{}", n % 500);
        write_generation(&mut out, &distinct_id, &format!("{padding} #{n}"), "ok", n as u64);
    }
    out.push_str("]}");
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_a_batch_of_about_eighteen_and_a_half_megabytes() {
        let body = body("phc_test", 0);
        let size = body.len() as f64 / 1e6;
        assert!((17.0..20.0).contains(&size), "{size} MB");
        let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(parsed["batch"].as_array().unwrap().len(), EVENTS_PER_REQUEST);
    }
}
