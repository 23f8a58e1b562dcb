//! code: Hog code evaluators' judgements end to end through the job table (spec section
//! 4.4), on a database and servers of their own.
//!
//! An `--api-only` server stores `--code-generations` `$ai_generation` events of ~2 KB
//! (batches of 500, 4 senders) for a project with one enabled 10-line Hog evaluator, so
//! each batch's generations queue `judge_code` jobs (up to 256 generations a job, which
//! carries them) and nothing judges yet. Then one `serve --worker-only` process starts,
//! pinned to one core (`taskset`), and the time from its pinning to the last job ended is
//! measured: claims (with the generations the jobs carry), the runs, the results and the
//! jobs' ends. PostgreSQL runs where the kernel puts it.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::report::{Measured, SummaryRow, rate_text, thousands};
use super::server::RunningServer;
use super::{BenchArgs, BenchProject, Setup, checked_output, cpu_time, http_client, psql_value_in, serve_command};
use crate::dev::{Server, scalar};
use crate::process::{self, Interrupted, Signals};

/// Judgements per second the issue asks for, on one core.
const TARGET_PER_SECOND: f64 = 20_000.0;
/// The core the worker is pinned to.
const WORKER_CORE: &str = "0";
const DATABASE: &str = "bench_code";
const SENDERS: usize = 4;
/// How long judging may take before it is called stuck.
const DEADLINE: Duration = Duration::from_secs(600);

/// A 10-line evaluator: competitors named, length and cost (the one the interpreter's
/// throughput example runs).
const EVALUATOR: &str = include_str!("../../../crates/hog/examples/evaluator.hog");

pub(super) async fn run(setup: &Setup<'_>, args: &BenchArgs, signals: &mut Signals) -> Result<Measured> {
    setup.pg.ensure_database(DATABASE)?;
    let server = Server {
        binary: setup.server.binary.clone(),
        database_url: setup.pg.url(DATABASE),
        keys: setup.server.keys.clone(),
    };
    let migrated = process::run(&mut server.command(&["migrate"]), signals).await?;
    process::check_status(migrated, "`llm-analytics migrate` (code database)")?;
    let project = BenchProject::create(&server, "Code bench", "code-bench@example.com")?;
    let mut api = RunningServer::start(serve_command(&server, setup.fake_openai, &["--api-only"]), signals).await?;
    let client = http_client(SENDERS as u64)?;
    let created = super::call_api(
        &client,
        reqwest::Method::POST,
        &format!("{}/api/environments/{}/evaluations/", api.base_url, project.id),
        &project.personal_key,
        &json!({"name": "bench code", "enabled": true, "evaluation_type": "hog",
                "evaluation_config": {"source": EVALUATOR}}),
    )
    .await?;
    let evaluation = scalar(&created["id"]).context("the evaluation has no id")?;

    let generations = args.code_generations as usize;
    eprintln!("xtask: code: storing {generations} generations of ~2 KB in batches of 500");
    let storing = Instant::now();
    send_generations(&client, &api.base_url, &project.token, generations).await?;
    let stored_in = storing.elapsed();
    api.stop().await?;
    let queued_sql = "SELECT coalesce(sum(jsonb_array_length(payload -> 'generations')), 0) FROM jobs \
                      WHERE kind = 'judge_code'";
    let queued: u64 = count(setup, queued_sql, signals).await?;
    if queued != generations as u64 {
        bail!("code: judge_code jobs hold {queued} generations of {generations}");
    }
    let results_sql = format!("SELECT count(*) FROM ai_events WHERE evaluation_id = '{evaluation}'");

    let mut worker =
        RunningServer::start(serve_command(&server, setup.fake_openai, &["--worker-only"]), signals).await?;
    let mut pin = tokio::process::Command::new("taskset");
    pin.args(["-a", "-p", "-c", WORKER_CORE, &worker.pid.to_string()]);
    checked_output(&process::output(&mut pin, signals).await?, "taskset (pinning the worker to one core)")?;
    let started = Instant::now();
    let started_at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    let cpu_before = (cpu_time::process_cpu(worker.pid)?, cpu_time::machine_busy()?);
    let before = count(setup, &results_sql, signals).await?;
    eprintln!("xtask: code: one worker pinned to core {WORKER_CORE}; {before} judged before it was pinned");
    // Whether any job is left, through the due jobs' index, twice a second: each poll
    // starts a psql and a PostgreSQL session, which at 10 a second took ~3 % of the machine.
    // The time is the last job's end as PostgreSQL recorded it (same clock), not the poll's.
    let any_left = "SELECT count(*) FROM (SELECT 1 FROM jobs \
                    WHERE kind = 'judge_code' AND state IN ('pending', 'running') LIMIT 1) AS left_over";
    loop {
        if count(setup, any_left, signals).await? == 0 {
            break;
        }
        if started.elapsed() > DEADLINE {
            bail!("code: jobs still to judge after {DEADLINE:?}");
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
            sig = signals.recv() => return Err(Interrupted(sig).into()),
        }
    }
    let last_end = "SELECT extract(epoch FROM max(finished_at)) FROM jobs WHERE kind = 'judge_code'";
    let last_end: f64 = psql_value_in(setup.pg, DATABASE, last_end, signals).await?.parse()?;
    let finished = Duration::from_secs_f64((last_end - started_at.as_secs_f64()).max(0.001));
    let worker_cpu = cpu_time::process_cpu(worker.pid)? - cpu_before.0;
    let machine_cpu = cpu_time::machine_busy()? - cpu_before.1;
    worker.stop().await?;
    let judged = count(setup, &results_sql, signals).await?;
    let failed =
        count(setup, "SELECT count(*) FROM jobs WHERE kind = 'judge_code' AND state <> 'done'", signals).await?;
    let passed =
        count(setup, &format!("{results_sql} AND properties -> '$ai_evaluation_result' = 'true'::jsonb"), signals)
            .await?;
    let timed = judged - before;
    let rate = timed as f64 / finished.as_secs_f64();
    let met = rate >= TARGET_PER_SECOND && judged == generations as u64 && failed == 0;
    let alone = postgres_alone(setup, &project.id, &evaluation, signals).await?;
    let per_judgement = |cpu: Duration| cpu.as_secs_f64() * 1e6 / timed.max(1) as f64;
    let worker_core_rate = timed as f64 / worker_cpu.as_secs_f64().max(0.001);
    Ok(Measured {
        title: "code: Hog judgements end to end, one worker on one core".to_owned(),
        lines: vec![
            ("generations / judged (passed)".to_owned(), format!("{generations} / {judged} ({passed})")),
            ("jobs not done".to_owned(), failed.to_string()),
            (
                "storing them with their jobs (4 senders, batches of 500): generations/s".to_owned(),
                format!(
                    "{} ({:.2} s)",
                    thousands(generations as f64 / stored_in.as_secs_f64()),
                    stored_in.as_secs_f64()
                ),
            ),
            ("timed judgements".to_owned(), format!("{timed} in {:.2} s", finished.as_secs_f64())),
            ("judgements/s".to_owned(), thousands(rate)),
            (
                "worker CPU per judgement (judgements per second of its core)".to_owned(),
                format!("{:.1} µs ({})", per_judgement(worker_cpu), thousands(worker_core_rate)),
            ),
            (
                "machine CPU per judgement, the rest (PostgreSQL, polling)".to_owned(),
                format!(
                    "{:.1} µs, {:.1} µs",
                    per_judgement(machine_cpu),
                    per_judgement(machine_cpu.saturating_sub(worker_cpu))
                ),
            ),
            (
                "PostgreSQL alone, one session: read carried generations, store results (per judgement)".to_owned(),
                format!("{:.1} µs + {:.1} µs", alone.micros_each(alone.read), alone.micros_each(alone.store)),
            ),
            ("PostgreSQL alone, judgements/s".to_owned(), thousands(alone.rate())),
        ],
        summary: SummaryRow {
            measurement: "Hog judgements end to end through the job table, 10-line evaluator, 2 KB generations, \
                          one worker pinned to one core; yardstick: PostgreSQL alone reading the generations \
                          as the jobs carry them and storing the results, one session"
                .to_owned(),
            server: rate_text("judgements", rate, timed, finished),
            yardstick: format!("{}/s", thousands(alone.rate())),
            ratio: format!("{:.2}", rate / alone.rate()),
            target: format!("≥ {TARGET_PER_SECOND:.0}/s, each judged once"),
            met,
        },
        notes: Vec::new(),
        errors: failed + (generations as u64).abs_diff(judged),
        first_error: None,
    })
}

/// What PostgreSQL alone took for the database's side of the judgements.
struct Alone {
    count: u64,
    /// Reading the generations as the jobs carry them (their attachments' text).
    read: Duration,
    /// Storing as many results (claims and events, their columns extracted).
    store: Duration,
}

impl Alone {
    fn rate(&self) -> f64 {
        self.count as f64 / (self.read + self.store).as_secs_f64().max(0.001)
    }

    /// `spent` over the count, in µs each.
    fn micros_each(&self, spent: Duration) -> f64 {
        spent.as_secs_f64() * 1e6 / self.count.max(1) as f64
    }
}

/// The judgements' database work done by PostgreSQL alone, in one session (one core) with
/// no parallel workers, set-based (no round trips, no statement per batch): the best it can
/// do of it here. The read is of the generations as the `judge_code` jobs carry them
/// (attachments of 256 generations' JSON text each, out of line and uncompressed as in
/// `jobs`, rebuilt from the stored generations since an ended job drops its own), each
/// sent as the worker receives it (`textsend`), measured, not sent; the store inserts a
/// copy of every result with a uuid in the same time order (its variant group, which no
/// result's can be, replaced by `ffff`), claims then events, parsing the properties from
/// text as the service's statement does (once a row: `OFFSET 0` keeps the parsed value a
/// column, so `ai_property_text` is inlined over it as in the service's statement, not
/// called on the cast six times). The copies are removed afterwards.
async fn postgres_alone(setup: &Setup<'_>, project: &str, evaluation: &str, signals: &mut Signals) -> Result<Alone> {
    let prepare = format!(
        "DROP TABLE IF EXISTS bench_alone_read, bench_alone_results; \
         CREATE TABLE bench_alone_read (attachment TEXT); \
         ALTER TABLE bench_alone_read ALTER COLUMN attachment SET STORAGE EXTERNAL; \
         INSERT INTO bench_alone_read SELECT '[' || string_agg(g, ',') || ']' FROM ( \
             SELECT (row_number() OVER () - 1) / 256 AS job, json_build_object('uuid', uuid, 'event', event, \
                 'distinct_id', distinct_id, 'timestamp', timestamp, 'properties', properties)::text AS g \
             FROM ai_events WHERE project_id = {project} AND event = '$ai_generation') AS carried GROUP BY job; \
         CREATE TABLE bench_alone_results AS SELECT overlay(uuid::text PLACING 'ffff' FROM 20 FOR 4)::uuid AS uuid, event, distinct_id, timestamp, \
             properties::text AS properties FROM ai_events WHERE project_id = {project} AND evaluation_id = '{evaluation}'; \
         SELECT count(*) FROM bench_alone_results"
    );
    let count: u64 = psql_value_in(setup.pg, DATABASE, &prepare, signals).await?.parse()?;
    // Each its own command: VACUUM cannot run in the transaction a many-statement command is.
    for settle in ["VACUUM ANALYZE", "CHECKPOINT"] {
        psql_value_in(setup.pg, DATABASE, settle, signals).await?;
    }
    let one_core = "SET max_parallel_workers_per_gather = 0;";
    let read = format!("{one_core} SELECT sum(length(textsend(attachment))) FROM bench_alone_read");
    let started = Instant::now();
    psql_value_in(setup.pg, DATABASE, &read, signals).await?;
    let read = started.elapsed();
    let store = format!(
        "{one_core} BEGIN; \
         INSERT INTO ai_event_ids (project_id, uuid, timestamp) SELECT {project}, uuid, timestamp FROM bench_alone_results; \
         INSERT INTO ai_events (project_id, uuid, event, distinct_id, timestamp, trace_id, session_id, \
             evaluation_id, target_event_id, experiment_id, experiment_item_id, properties) \
         SELECT {project}, uuid, event, distinct_id, timestamp, ai_property_text(p, '$ai_trace_id'), \
             ai_property_text(p, '$ai_session_id'), ai_property_text(p, '$ai_evaluation_id'), \
             ai_property_text(p, '$ai_target_event_id'), ai_property_text(p, '$ai_experiment_id'), \
             ai_property_text(p, '$ai_experiment_item_id'), p \
         FROM (SELECT uuid, event, distinct_id, timestamp, properties::jsonb AS p FROM bench_alone_results OFFSET 0) AS r; \
         COMMIT"
    );
    let started = Instant::now();
    psql_value_in(setup.pg, DATABASE, &store, signals).await?;
    let store = started.elapsed();
    let cleanup = format!(
        "DELETE FROM ai_events WHERE project_id = {project} AND uuid IN (SELECT uuid FROM bench_alone_results); \
         DELETE FROM ai_event_ids WHERE project_id = {project} AND uuid IN (SELECT uuid FROM bench_alone_results); \
         DROP TABLE bench_alone_read, bench_alone_results"
    );
    psql_value_in(setup.pg, DATABASE, &cleanup, signals).await?;
    Ok(Alone { count, read, store })
}

async fn count(setup: &Setup<'_>, sql: &str, signals: &mut Signals) -> Result<u64> {
    Ok(psql_value_in(setup.pg, DATABASE, sql, signals).await?.parse()?)
}

/// Stores `generations` generations with a ~2 KB answer each, `SENDERS` batches at a time.
async fn send_generations(client: &reqwest::Client, base_url: &str, token: &str, generations: usize) -> Result<()> {
    let answer = "The order ships in three to five working days. ".repeat(41);
    let url = format!("{base_url}/batch/");
    let bodies = super::judge::generation_bodies(token, generations, 9, |n, i| {
        json!({
            "$ai_trace_id": format!("trace-{n}-{i}"),
            "$ai_model": "gpt-5-mini", "$ai_provider": "openai",
            "$ai_total_cost_usd": 0.01,
            "$ai_input": [{"role": "user", "content": "When does my order ship?"}],
            "$ai_output_choices": [{"role": "assistant", "content": answer}],
        })
    });
    let mut chunks: Vec<Vec<Vec<u8>>> = (0..SENDERS).map(|_| Vec::new()).collect();
    for (n, body) in bodies.into_iter().enumerate() {
        chunks[n % SENDERS].push(body);
    }
    let senders: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                for body in chunk {
                    let response =
                        client.post(&url).header("content-type", "application/json").body(body).send().await?;
                    if !response.status().is_success() {
                        bail!("POST /batch/ answered {}", response.status());
                    }
                }
                Ok(())
            })
        })
        .collect();
    for sender in senders {
        sender.await.context("a sender task")??;
    }
    Ok(())
}
