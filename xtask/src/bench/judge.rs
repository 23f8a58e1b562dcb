//! judge: the evaluation runner (spec section 9), three measurements.
//!
//! 1. **Throughput**: `--judge-generations` `$ai_generation` events sent through
//!    `POST /batch/` (batches of 500, 4 senders) to a project with one enabled evaluation
//!    on its own key, judged by the fake OpenAI (which answers at once), timed from the
//!    first batch sent to the last result stored; with the bench server alone, then with
//!    two more `serve --worker-only` processes on the same database. What this measures
//!    is the service's own overhead per judgement: ingest, job, claim, LLM call, result.
//! 2. **Claim latency**: the adapter's claim statement (`FOR UPDATE SKIP LOCKED`, 8 jobs
//!    at a time, as a worker claims) with 100 000 due jobs in the table, from 4 `pgbench`
//!    clients at once, in a database of its own; per-claim latencies from pgbench's log.
//! 3. **Results**: `evaluation_results/` with a breakdown, over `--summary-runs` results of
//!    one evaluation among `--seed-events` events, one request at a time, beside the
//!    adapter's results statement run by `psql` on the same data.
//!
//! The claim and results statements are the ones `adapters-postgres` exports, so the
//! bench times exactly what the service runs.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::offline_items::{PsqlTimings, SEED_DAYS, ensure_partitions_sql, mean, median, timing_script};
use super::report::{LoadResult, Measured, ReadTarget, SummaryRow, ms, rate_text, thousands};
use super::server::RunningServer;
use super::{BenchArgs, Setup, checked_output, http_client, psql, psql_value};
use crate::dev::scalar;
use crate::process::{self, Interrupted, Signals};

/// Judgements per second we aim at (end to end, fake provider answering at once).
const TARGET_PER_SECOND: f64 = 500.0;
/// Claim latency p99 we aim below, in milliseconds.
const TARGET_CLAIM_P99_MS: f64 = 10.0;
/// Due jobs in the table while claims are timed.
const PENDING_JOBS: u64 = 100_000;
/// Jobs one claim takes (a worker's free slots; the default `LLMA_JUDGE_CONCURRENCY`).
const CLAIM_BATCH: u64 = 8;
/// pgbench clients claiming at once, and claims per client.
const CLAIM_CLIENTS: u64 = 4;
const CLAIMS_PER_CLIENT: u64 = 1_000;
/// Events per `POST /batch/` and concurrent senders of the throughput measurement.
const BATCH: usize = 500;
const SENDERS: usize = 4;
/// How long the throughput measurement may take before it is called stuck.
const JUDGE_DEADLINE: Duration = Duration::from_secs(600);

/// The judge's answer the fake OpenAI gives.
const VERDICT: &str = r#"{"verdict": true, "reasoning": "The answer greets the user politely.", "applicable": true}"#;

pub(super) async fn run(
    setup: &Setup<'_>,
    args: &BenchArgs,
    spawn_worker: &dyn Fn() -> tokio::process::Command,
    signals: &mut Signals,
) -> Result<Vec<Measured>> {
    let mut measured = throughput(setup, args, spawn_worker, signals).await?;
    measured.push(claim_latency(setup, signals).await?);
    measured.push(results(setup, args, signals).await?);
    Ok(measured)
}

async fn api(
    client: &reqwest::Client,
    setup: &Setup<'_>,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> Result<Value> {
    super::call_api(client, method, &format!("{}{path}", setup.base_url), setup.personal_key, &body).await
}

async fn throughput(
    setup: &Setup<'_>,
    args: &BenchArgs,
    spawn_worker: &dyn Fn() -> tokio::process::Command,
    signals: &mut Signals,
) -> Result<Vec<Measured>> {
    let client = http_client(SENDERS as u64)?;
    let llma = format!("/api/environments/{}/llm_analytics", setup.project_id);
    let key = api(
        &client,
        setup,
        reqwest::Method::POST,
        &format!("{llma}/provider_keys/"),
        json!({"provider": "openai", "name": "bench judge key", "api_key": "sk-bench-judge-key-0123456789"}),
    )
    .await?;
    let key_id = scalar(&key["id"]).context("the key has no id")?;
    let evaluation = api(
        &client,
        setup,
        reqwest::Method::POST,
        &format!("/api/environments/{}/evaluations/", setup.project_id),
        json!({
            "name": "bench judge",
            "enabled": true,
            "evaluation_type": "llm_judge",
            "evaluation_config": {"prompt": "Is the answer polite?"},
            "output_type": "boolean_with_na",
            "model_configuration": {"provider": "openai", "model": "gpt-5-mini", "provider_key_id": key_id},
        }),
    )
    .await?;
    let evaluation_id = scalar(&evaluation["id"]).context("the evaluation has no id")?;
    setup.fake_openai.set_chat_content(VERDICT);

    let mut measured = Vec::new();
    let mut rates = Vec::new();
    for replicas in [1usize, 3] {
        let mut workers = Vec::new();
        for _ in 1..replicas {
            workers.push(RunningServer::start(spawn_worker(), signals).await?);
        }
        let (rate, part) = judge_run(setup, args, &client, &evaluation_id, replicas, signals).await?;
        for mut worker in workers {
            worker.stop().await?;
        }
        rates.push(rate);
        measured.push(part);
    }
    // Later measurements ingest nothing for it, but keep the table quiet anyway.
    api(
        &client,
        setup,
        reqwest::Method::PATCH,
        &format!("/api/environments/{}/evaluations/{evaluation_id}/", setup.project_id),
        json!({"enabled": false}),
    )
    .await?;
    if let [one, three] = rates[..] {
        measured[1].lines.push(("3 replicas / 1 replica".to_owned(), format!("{:.2}", three / one)));
    }
    Ok(measured)
}

async fn count(setup: &Setup<'_>, sql: &str, signals: &mut Signals) -> Result<u64> {
    Ok(psql_value(setup.pg, sql, signals).await?.parse()?)
}

async fn judge_run(
    setup: &Setup<'_>,
    args: &BenchArgs,
    client: &reqwest::Client,
    evaluation_id: &str,
    replicas: usize,
    signals: &mut Signals,
) -> Result<(f64, Measured)> {
    let generations = args.judge_generations as usize;
    let results_sql = format!(
        "SELECT count(*) FROM ai_events WHERE project_id = {} AND evaluation_id = '{evaluation_id}'",
        setup.project_id
    );
    let before = count(setup, &results_sql, signals).await?;
    let failed_before = count(setup, "SELECT count(*) FROM jobs WHERE state = 'failed'", signals).await?;
    eprintln!("xtask: judge: {generations} generations through POST /batch/, {replicas} replica(s) judging");

    let url = format!("{}/batch/", setup.base_url);
    let batches = generation_bodies(setup.project_token, generations, replicas, |n, i| {
        json!({
            "$ai_trace_id": format!("trace-{replicas}-{n}-{i}"),
            "$ai_model": "gpt-5-mini", "$ai_provider": "openai",
            "$ai_input": [{"role": "user", "content": "Say hello to the user, please."}],
            "$ai_output_choices": [{"role": "assistant", "content": [{"type": "text", "text": "Hello! How can I help you today?"}]}],
        })
    });

    let started = Instant::now();
    let mut sending = LoadResult::empty(Duration::ZERO);
    let chunks: Vec<Vec<Vec<u8>>> = {
        let mut chunks: Vec<Vec<Vec<u8>>> = (0..SENDERS).map(|_| Vec::new()).collect();
        for (n, batch) in batches.into_iter().enumerate() {
            chunks[n % SENDERS].push(batch);
        }
        chunks
    };
    let senders: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                for body in chunk {
                    let sent = Instant::now();
                    let outcome =
                        match client.post(&url).header("content-type", "application/json").body(body).send().await {
                            Ok(response) if response.status().is_success() => Ok(BATCH as u64),
                            Ok(response) => Err(format!("{}", response.status())),
                            Err(error) => Err(error.to_string()),
                        };
                    outcomes.push((outcome, sent, Instant::now()));
                }
                outcomes
            })
        })
        .collect();
    for sender in senders {
        for (outcome, sent, done) in sender.await.context("a sender task")? {
            sending.record(outcome, sent, done);
        }
    }
    let ingested = started.elapsed();

    let expected = before + generations as u64;
    let finished = loop {
        let stored = count(setup, &results_sql, signals).await?;
        if stored >= expected {
            break started.elapsed();
        }
        if started.elapsed() > JUDGE_DEADLINE {
            bail!("judge: {} of {generations} judged after {JUDGE_DEADLINE:?}", stored - before);
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(50)) => {}
            sig = signals.recv() => return Err(Interrupted(sig).into()),
        }
    };
    let judged = count(setup, &results_sql, signals).await? - before;
    let failed = count(setup, "SELECT count(*) FROM jobs WHERE state = 'failed'", signals).await? - failed_before;
    let rate = judged as f64 / finished.as_secs_f64();
    let met = rate >= TARGET_PER_SECOND && judged == generations as u64 && failed == 0 && sending.errors == 0;
    let part = Measured {
        title: format!("judge: end to end, {replicas} replica(s)"),
        lines: vec![
            ("generations sent / judged".to_owned(), format!("{generations} / {judged}")),
            ("jobs failed".to_owned(), failed.to_string()),
            ("ingest time (all batches answered)".to_owned(), format!("{:.2} s", ingested.as_secs_f64())),
            ("first batch sent → last result stored".to_owned(), format!("{:.2} s", finished.as_secs_f64())),
            ("judgements/s".to_owned(), thousands(rate)),
            ("batch p50 latency".to_owned(), ms(sending.percentile(50.0))),
        ],
        summary: SummaryRow::absolute(
            format!("judged generations end to end, {replicas} replica(s), fake provider answering at once"),
            rate_text("judgements", rate, generations as u64, finished),
            format!("≥ {TARGET_PER_SECOND:.0}/s, each judged once"),
            met,
        ),
        notes: Vec::new(),
        errors: sending.errors + failed + (generations as u64).abs_diff(judged),
        first_error: sending.first_error.clone(),
    };
    Ok((rate, part))
}

/// `POST /batch/` bodies of `generations` `$ai_generation` events, [`BATCH`] to a body;
/// `properties(batch, index)` gives each event's properties.
pub(super) fn generation_bodies(
    token: &str,
    generations: usize,
    run: usize,
    properties: impl Fn(usize, usize) -> Value,
) -> Vec<Vec<u8>> {
    (0..generations.div_ceil(BATCH))
        .map(|n| {
            let events: Vec<Value> = (0..BATCH.min(generations - n * BATCH))
                .map(|i| {
                    json!({
                        "event": "$ai_generation",
                        "distinct_id": format!("user-{}", i % 97),
                        "uuid": uuid_like(run, n, i),
                        "properties": properties(n, i),
                    })
                })
                .collect();
            serde_json::to_vec(&json!({"api_key": token, "batch": events})).unwrap_or_default()
        })
        .collect()
}

/// A uuid for the n-th event of batch `batch` of run `run` (distinct across runs).
fn uuid_like(run: usize, batch: usize, index: usize) -> String {
    let random: u64 = rand::random();
    format!("{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}", random as u32, run, batch % 0xfff, index % 0xfff, random >> 16)
}

async fn claim_latency(setup: &Setup<'_>, signals: &mut Signals) -> Result<Measured> {
    const DATABASE: &str = "bench_jobs";
    setup.pg.ensure_database(DATABASE)?;
    let migrated = process::run(&mut setup.migrate(DATABASE), signals).await?;
    process::check_status(migrated, "`llm-analytics migrate` (claim database)")?;
    eprintln!(
        "xtask: judge: {PENDING_JOBS} due jobs; {CLAIM_CLIENTS} pgbench clients × {CLAIMS_PER_CLIENT} claims of {CLAIM_BATCH}"
    );
    let mut seed = super::psql_command(setup.pg, DATABASE);
    seed.args([
        "-c",
        "TRUNCATE jobs",
        "-c",
        &format!(
            "INSERT INTO jobs (id, project_id, kind, unique_key, payload, run_after) \
             SELECT gen_random_uuid(), 1 + i % 50, 'judge', 'bench:' || i, \
                    jsonb_build_object('evaluation', gen_random_uuid(), 'generation', gen_random_uuid(), 'manual', false), \
                    now() - (i % 3600) * interval '1 second' \
             FROM generate_series(1, {PENDING_JOBS}) AS i"
        ),
        "-c",
        "VACUUM (ANALYZE) jobs",
    ]);
    checked_output(&process::output(&mut seed, signals).await?, "seeding the jobs")?;

    let claim = adapters_postgres::statements::CLAIM
        .replace("$1::text[]", "ARRAY['judge']")
        .replace("$2::int[]", &format!("ARRAY[{CLAIM_BATCH}]"))
        .replace("$3", "60");
    let script = setup.dir.join("claim.sql");
    std::fs::write(&script, format!("{claim};\n")).context("writing the claim script")?;
    let log_prefix = setup.dir.join("claim-log");
    let mut bench = tokio::process::Command::from(setup.pg.client("pgbench"));
    bench
        .args(["-n", "-M", "prepared", "-h", "127.0.0.1", "-U", "postgres", "-p"])
        .arg(setup.pg.port().to_string())
        .args(["-c", &CLAIM_CLIENTS.to_string(), "-j", "2", "-t", &CLAIMS_PER_CLIENT.to_string(), "-l"])
        .arg(format!("--log-prefix={}", log_prefix.display()))
        .arg("-f")
        .arg(&script)
        .arg(DATABASE)
        .current_dir(setup.dir);
    let out = process::output(&mut bench, signals).await?;
    checked_output(&out, "pgbench (claims)")?;
    let mut latencies_us: Vec<f64> = Vec::new();
    for entry in std::fs::read_dir(setup.dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with("claim-log") {
            for line in std::fs::read_to_string(entry.path())?.lines() {
                if let Some(us) = line.split_whitespace().nth(2).and_then(|v| v.parse::<f64>().ok()) {
                    latencies_us.push(us);
                }
            }
        }
    }
    if latencies_us.len() as u64 != CLAIM_CLIENTS * CLAIMS_PER_CLIENT {
        bail!("pgbench logged {} claims, expected {}", latencies_us.len(), CLAIM_CLIENTS * CLAIMS_PER_CLIENT);
    }
    latencies_us.sort_by(f64::total_cmp);
    let percentile =
        |p: f64| latencies_us[((latencies_us.len() as f64 * p / 100.0).ceil() as usize).saturating_sub(1)] / 1e3;
    let left: u64 = {
        let mut query = super::psql_command(setup.pg, DATABASE);
        query.args(["-tA", "-c", "SELECT count(*) FROM jobs WHERE state = 'pending'"]);
        let out = process::output(&mut query, signals).await?;
        checked_output(&out, "counting pending jobs")?;
        String::from_utf8_lossy(&out.stdout).trim().parse()?
    };
    let (p50, p99) = (percentile(50.0), percentile(99.0));
    Ok(Measured {
        title: format!("judge: claim latency, {} due jobs", thousands(PENDING_JOBS as f64)),
        lines: vec![
            ("claims (of up to 8 jobs each)".to_owned(), thousands(latencies_us.len() as f64)),
            ("claim p50".to_owned(), format!("{p50:.2} ms")),
            ("claim p99".to_owned(), format!("{p99:.2} ms")),
            ("claim max".to_owned(), format!("{:.2} ms", latencies_us.last().copied().unwrap_or_default() / 1e3)),
            ("due jobs left afterwards".to_owned(), thousands(left as f64)),
        ],
        summary: SummaryRow::absolute(
            format!(
                "job claim (`FOR UPDATE SKIP LOCKED`, 8 at a time) with {} due jobs, {CLAIM_CLIENTS} claimers",
                thousands(PENDING_JOBS as f64)
            ),
            format!("p50 {p50:.2} ms, p99 {p99:.2} ms"),
            format!("p99 < {TARGET_CLAIM_P99_MS:.0} ms"),
            p99 < TARGET_CLAIM_P99_MS,
        ),
        notes: Vec::new(),
        errors: 0,
        first_error: None,
    })
}

async fn results(setup: &Setup<'_>, args: &BenchArgs, signals: &mut Signals) -> Result<Measured> {
    let client = http_client(1)?;
    let evaluation = api(
        &client,
        setup,
        reqwest::Method::POST,
        &format!("/api/environments/{}/evaluations/", setup.project_id),
        json!({"name": "bench results", "evaluation_type": "llm_judge", "evaluation_config": {"prompt": "Is the answer polite?"}}),
    )
    .await?;
    let evaluation_id = scalar(&evaluation["id"]).context("the evaluation has no id")?;
    let runs = args.summary_runs;
    let seed_events = args.seed_events.max(runs);
    eprintln!(
        "xtask: judge: seeding {seed_events} $ai_evaluation events, {runs} results of evaluation {evaluation_id}"
    );
    psql_value(setup.pg, &ensure_partitions_sql(), signals).await?;
    psql_value(setup.pg, "TRUNCATE ai_events, ai_event_ids", signals).await?;
    psql(setup.pg, &["-c", &super::summary::seed_sql(setup.project_id, &evaluation_id, runs, seed_events)], signals)
        .await?;
    psql(setup.pg, &["-c", "VACUUM (ANALYZE) ai_events"], signals).await?;

    let date_from = chrono_days_ago(SEED_DAYS + 1);
    let path = format!(
        "/api/environments/{}/llm_analytics/evaluation_results/?evaluation_id={evaluation_id}&breakdown=%24ai_model&date_from={date_from}",
        setup.project_id
    );
    let url = format!("{}{path}", setup.base_url);
    let mut timings = LoadResult::empty(Duration::ZERO);
    let mut answered = Value::Null;
    for n in 0..(args.warmup_requests + args.requests) {
        let sent = Instant::now();
        let response = client.get(&url).bearer_auth(setup.personal_key).send().await;
        let outcome = match response {
            Ok(response) if response.status().is_success() => {
                answered = response.json().await.unwrap_or(Value::Null);
                Ok(1)
            }
            Ok(response) => Err(format!("{}: {}", response.status(), response.text().await.unwrap_or_default())),
            Err(error) => Err(error.to_string()),
        };
        if n >= args.warmup_requests {
            timings.record(outcome, sent, Instant::now());
        }
        signals.check()?;
    }
    let totals = answered["totals"]["runs"].as_u64();
    if totals != Some(runs) {
        bail!("evaluation_results/ counted {totals:?} runs, expected {runs}: {answered}");
    }

    let sql = adapters_postgres::statements::RESULTS;
    let script = timing_script(
        &format!("PREPARE results(bigint, text, timestamptz, timestamptz, text, text, bigint, text) AS\n{sql};\n"),
        &format!(
            "EXECUTE results({}, '{evaluation_id}', '{date_from}', now(), '$ai_model', 'day', 25, '$other');\n",
            setup.project_id
        ),
        args,
    );
    let script_file = setup.dir.join("results.sql");
    std::fs::write(&script_file, script).context("writing the results script")?;
    let out = psql(setup.pg, &["-tA", "-f", &script_file.to_string_lossy()], signals).await?;
    let psql_timings = PsqlTimings::parse(&out);
    if psql_timings.client_ms.len() as u64 != args.requests {
        bail!("psql printed {} `Time:` lines, expected {}:\n{out}", psql_timings.client_ms.len(), args.requests);
    }
    let api_p50 = timings.percentile(50.0).unwrap_or_default().as_secs_f64() * 1e3;
    let psql_p50 = median(&psql_timings.client_ms);
    let ratio = api_p50 / psql_p50;
    Ok(Measured {
        title: format!("judge: evaluation_results/ by $ai_model, {} results", thousands(runs as f64)),
        lines: vec![
            (
                "seeded events / results of the evaluation".to_owned(),
                format!("{} / {}", thousands(seed_events as f64), thousands(runs as f64)),
            ),
            ("API p50, one at a time".to_owned(), format!("{api_p50:.2} ms")),
            ("API mean".to_owned(), ms(timings.mean())),
            ("psql p50 (\\timing)".to_owned(), format!("{psql_p50:.2} ms")),
            ("psql mean".to_owned(), format!("{:.2} ms", mean(&psql_timings.client_ms))),
            ("psql p50 EXPLAIN ANALYZE exec".to_owned(), format!("{:.2} ms", median(&psql_timings.execution_ms))),
            ("API / psql p50".to_owned(), format!("{ratio:.2}")),
        ],
        summary: SummaryRow {
            measurement: format!(
                "evaluation_results/ with a breakdown: {} results among {} events",
                thousands(runs as f64),
                thousands(seed_events as f64)
            ),
            server: format!("p50 {api_p50:.2} ms (whole request, one at a time)"),
            yardstick: format!("results SQL in `psql`: p50 {psql_p50:.2} ms"),
            ratio: format!("{ratio:.2}"),
            target: ReadTarget::BESIDE_PSQL.describe(),
            met: ReadTarget::BESIDE_PSQL.met(ratio, api_p50) && timings.errors == 0,
        },
        notes: Vec::new(),
        errors: timings.errors,
        first_error: timings.first_error.clone(),
    })
}

/// The date `days` ago (UTC), as `YYYY-MM-DD`, from the system clock.
fn chrono_days_ago(days: u64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
    let day = (now / 86_400).saturating_sub(days) as i64;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_adapter_statements_have_the_parameters_the_bench_binds() {
        let claim = adapters_postgres::statements::CLAIM;
        assert!(claim.contains("FOR UPDATE SKIP LOCKED") && claim.contains("$3"), "{claim}");
        assert!(
            claim.contains("$1::text[]") && claim.contains("$2::int[]"),
            "the bench binds the kinds and their room as the worker does: {claim}"
        );
        let results = adapters_postgres::statements::RESULTS;
        for parameter in ["$1", "$2", "$3", "$4", "$5", "$6", "$7", "$8"] {
            assert!(results.contains(parameter), "{parameter}");
        }
    }

    #[test]
    fn days_ago_is_a_calendar_date() {
        let date = chrono_days_ago(0);
        assert_eq!(date.len(), 10);
        assert!(date.starts_with("20"));
        assert_eq!(&date[4..5], "-");
    }
}
