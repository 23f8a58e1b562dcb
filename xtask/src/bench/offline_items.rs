//! offline: `POST offline_evaluations/experiment_items/` over `--seed-events` stored
//! `$ai_evaluation` events, beside the adapter's own SQL run by `psql` on the same data.
//!
//! The events are seeded with one `INSERT … SELECT generate_series` over the last
//! [`SEED_DAYS`] days (so more than one monthly partition holds rows); the benchmarked
//! experiment has `--items` items × 3 metrics, one event each, within two hours three days
//! ago; the rest are other experiments of the project (40 %), online evaluations of the
//! project (30 %) and events of 20 other projects (30 %). `ai_event_ids` is not seeded:
//! the query does not read it.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::{BenchArgs, LoadResult, Measured, Setup, SummaryRow, http_client, ms, psql, psql_value, thousands};
use crate::process::{Interrupted, Signals};

/// The ratio API latency / psql latency we aim below.
const TARGET_RATIO: f64 = 2.0;
/// The seeded events span this many days back from now.
pub(super) const SEED_DAYS: u64 = 30;
/// The metrics of every seeded experiment item.
const METRICS: u64 = 3;
/// `MAX_EXPERIMENT_ITEMS` of `crates/domain/src/offline_evaluation/model.rs`: the `LIMIT`
/// the service binds.
const MAX_EXPERIMENT_ITEMS: u64 = 20_000;
/// A timed API request slower than this ends the API measurement (the rest would be as
/// slow: see [`psql_script`] on generic plans).
const API_GIVE_UP: Duration = Duration::from_secs(30);
/// How long the one generic-plan execution in psql may take.
pub(super) const GENERIC_PLAN_TIMEOUT_SECS: u64 = 120;
/// What the psql script echoes before its generic-plan execution.
pub(super) const GENERIC_MARKER: &str = "-- generic plan --";

pub(super) async fn run(setup: &Setup<'_>, args: &BenchArgs, signals: &mut Signals) -> Result<Measured> {
    let experiment_id = format!("{:032x}", rand::random::<u128>());
    let groups = args.items * METRICS;
    let seed_events = args.seed_events.max(groups);

    eprintln!("xtask: offline: seeding {seed_events} $ai_evaluation events over {SEED_DAYS} days");
    let partitions_created = psql_value(setup.pg, &ensure_partitions_sql(), signals).await?;
    psql_value(setup.pg, "TRUNCATE ai_events, ai_event_ids", signals).await?;
    let started = Instant::now();
    psql(setup.pg, &["-c", &seed_sql(setup.project_id, &experiment_id, groups, seed_events)], signals).await?;
    let seed_time = started.elapsed();
    psql(setup.pg, &["-c", "VACUUM (ANALYZE) ai_events"], signals).await?;
    let stored: u64 = psql_value(setup.pg, "SELECT count(*) FROM ai_events", signals).await?.parse()?;
    let partitions: u64 =
        psql_value(setup.pg, "SELECT count(DISTINCT tableoid) FROM ai_events", signals).await?.parse()?;
    eprintln!(
        "xtask: offline: {stored} events in {partitions} partitions ({partitions_created} created), seeded in {:.1} s",
        seed_time.as_secs_f64()
    );

    let url = format!(
        "{}/api/environments/{}/llm_analytics/offline_evaluations/experiment_items/",
        setup.base_url, setup.project_id
    );
    eprintln!(
        "xtask: offline: POST {url}, {} warm-up + {} timed requests, one at a time",
        args.warmup_requests, args.requests
    );
    let client = http_client(1)?;
    let (api, api_note) = tokio::select! {
        api = api_timings(&client, &url, setup.personal_key, &experiment_id, groups, args) => api?,
        sig = signals.recv() => return Err(Interrupted(sig).into()),
    };

    eprintln!(
        "xtask: offline: the same SQL in psql, {} warm-up + {} timed executions",
        args.warmup_requests, args.requests
    );
    let script = psql_script(setup.project_id, &experiment_id, args);
    let (timings, out) = timed_in_psql(setup, "offline-items.sql", &script, args.requests, signals).await?;
    if timings.rows != Some(groups) {
        bail!("the SQL in psql returned {:?} rows, the API {groups}:\n{out}", timings.rows);
    }
    let generic = timings
        .generic_ms
        .map_or_else(|| format!("> {GENERIC_PLAN_TIMEOUT_SECS} s (timed out)"), |value| format!("{value:.2} ms"));

    let api_p50 = api.percentile(50.0).unwrap_or_default().as_secs_f64() * 1e3;
    let api_mean = api.mean().unwrap_or_default().as_secs_f64() * 1e3;
    let (psql_p50, exec_p50) = (timings.p50(), timings.execution_p50());
    let ratio = api_p50 / psql_p50;
    let ms_of = |value: f64| format!("{value:.2} ms");
    let generic_note = generic_plan_note(timings.generic_ms, exec_p50, &generic);
    // The target holds only if the API never slowed down and a pooled connection's later
    // executions (generic plan) would not be slow either.
    let met = ratio < TARGET_RATIO && api.errors == 0 && generic_note.is_none();
    Ok(Measured {
        title: format!(
            "offline: experiment_items/, {} of {} events",
            thousands(groups as f64),
            thousands(stored as f64)
        ),
        lines: vec![
            ("seeded events / partitions used".to_owned(), format!("{} / {partitions}", thousands(stored as f64))),
            ("seed INSERT ... SELECT time".to_owned(), format!("{:.1} s", seed_time.as_secs_f64())),
            ("rows per answer (item x metric)".to_owned(), thousands(groups as f64)),
            ("API p50 latency".to_owned(), ms_of(api_p50)),
            ("API mean latency".to_owned(), ms_of(api_mean)),
            ("API max latency".to_owned(), ms(api.percentile(100.0))),
            ("API errors (non-200)".to_owned(), api.errors.to_string()),
            ("API p50 / psql p50".to_owned(), format!("{ratio:.3}")),
            ("psql exec time with the generic plan".to_owned(), generic.clone()),
        ]
        .into_iter()
        .chain(timings.lines())
        .collect(),
        summary: SummaryRow {
            measurement: format!(
                "offline items, {} rows out of {} stored events",
                thousands(groups as f64),
                thousands(stored as f64)
            ),
            server: format!("p50 {} (mean {})", ms_of(api_p50), ms_of(api_mean)),
            yardstick: timings.yardstick("same SQL in `psql`"),
            ratio: format!("{ratio:.2}"),
            target: format!("< {TARGET_RATIO}"),
            met,
        },
        notes: generic_note.into_iter().chain(api_note).collect(),
        errors: api.errors,
        first_error: api.first_error,
    })
}

/// A warning when the generic plan of the statement is much slower than its custom plans:
/// PostgreSQL switches a prepared statement to the generic plan after five executions on
/// one connection when the generic plan's estimated cost is lower, and the server's pool
/// (sqlx caches prepared statements per connection) then runs every later request with it.
fn generic_plan_note(generic_ms: Option<f64>, custom_ms: f64, shown: &str) -> Option<String> {
    let slow = generic_ms.is_none_or(|generic| generic > TARGET_RATIO * custom_ms);
    slow.then(|| {
        format!(
            "offline items: the statement's GENERIC plan takes {shown} against {custom_ms:.2} ms with custom plans. \
             PostgreSQL switches a prepared statement to its generic plan after 5 executions on one connection \
             and sqlx prepares per pooled connection, so the API's steady state is the slow figure. The \
             numbers above are the custom-plan ones (each pooled connection's first 5 executions)."
        )
    })
}

/// Creates the partitions of the seeded days; prints how many it created.
pub(super) fn ensure_partitions_sql() -> String {
    format!(
        "SELECT count(*) FILTER (WHERE created) FROM generate_series(0, {}) AS d, \
         ai_events_ensure_partition(now() - make_interval(days => d)) AS created",
        SEED_DAYS + 1
    )
}

/// One `INSERT … SELECT` of `total` events: rows 1..=`groups` are the benchmarked
/// experiment's (item = (i-1)/3, metric = (i-1)%3), the rest are spread as the module
/// docs say. The id columns come from the properties through `ai_property_text`, as in
/// the adapter's `INSERT_BATCH`.
fn seed_sql(project_id: &str, experiment_id: &str, groups: u64, total: u64) -> String {
    let days_secs = SEED_DAYS * 86_400;
    let reasoning = "The answer matches the expected output on every key fact, keeps the requested format and \
                     cites the source passage; minor verbosity does not change the verdict for this metric here.";
    format!(
        "\
INSERT INTO ai_events (project_id, uuid, event, distinct_id, timestamp, trace_id, evaluation_id, target_event_id,
                       experiment_id, experiment_item_id, properties)
SELECT project_id, gen_random_uuid(), '$ai_evaluation', 'user-' || (i % 5000), ts,
       ai_property_text(p, '$ai_trace_id'), ai_property_text(p, '$ai_evaluation_id'),
       ai_property_text(p, '$ai_target_event_id'), ai_property_text(p, '$ai_experiment_id'),
       ai_property_text(p, '$ai_experiment_item_id'), p
FROM (
    SELECT i, kind, project_id, ts,
           CASE WHEN kind = 'online' THEN jsonb_build_object(
               '$ai_evaluation_id', md5('evaluation' || (i % 5))::uuid::text,
               '$ai_evaluation_name', 'helpfulness',
               '$ai_target_event_id', gen_random_uuid()::text,
               '$ai_trace_id', md5('trace' || (i / 4))::uuid::text,
               '$ai_evaluation_result', i % 4 <> 1,
               '$ai_evaluation_applicable', true,
               '$ai_evaluation_reasoning', '{reasoning}',
               '$ai_evaluation_key_type', 'provider_key',
               '$ai_model', 'gpt-4.1-mini', '$ai_provider', 'openai', '$lib', 'posthog-python')
           ELSE jsonb_build_object(
               '$ai_experiment_id', experiment,
               '$ai_experiment_name', 'Experiment ' || left(experiment, 8),
               '$ai_experiment_item_id', item,
               '$ai_experiment_item_name', 'Case ' || item,
               '$ai_metric_name', (ARRAY['accuracy', 'relevance', 'toxicity'])[metric + 1],
               '$ai_metric_version', '1',
               '$ai_status', 'completed',
               '$ai_score', round((((i * 37) % 1000) / 1000.0)::numeric, 3),
               '$ai_score_min', 0, '$ai_score_max', 1,
               '$ai_result_type', 'numeric',
               '$ai_reasoning', '{reasoning}',
               '$ai_trace_id', md5(experiment || item)::uuid::text,
               '$ai_dataset_id', md5('dataset' || left(experiment, 8))::uuid::text,
               '$ai_dataset_item_id', 'dataset-' || item,
               '$ai_expected', 'The expected answer of ' || item,
               '$ai_input', jsonb_build_array(jsonb_build_object('role', 'user',
                   'content', 'Question of ' || item || ': what does the policy say about refunds after 30 days?')),
               '$ai_output', 'Refunds after 30 days are possible as store credit only (' || item || ').',
               '$lib', 'posthog-python')
           END AS p
    FROM (
        SELECT i, kind,
               CASE kind WHEN 'other_project' THEN 1000000 + i % 20 ELSE {project_id} END AS project_id,
               CASE kind WHEN 'bench' THEN '{experiment_id}'
                         ELSE md5('experiment' || (i % 500) || kind)::uuid::text END AS experiment,
               CASE kind WHEN 'bench' THEN 'item-' || lpad(((i - 1) / 3)::text, 5, '0')
                         ELSE 'item-' || lpad(((i / 3) % 2000)::text, 5, '0') END AS item,
               CASE kind WHEN 'bench' THEN (i - 1) % 3 ELSE i % 3 END AS metric,
               CASE kind WHEN 'bench' THEN now() - interval '3 days' + i * interval '1 second'
                         ELSE now() - ((i * 7919) % {days_secs}) * interval '1 second' - (i % 1000) * interval '1 ms'
               END AS ts
        FROM (
            SELECT i, CASE WHEN i <= {groups} THEN 'bench'
                           WHEN i % 10 < 4 THEN 'experiment'
                           WHEN i % 10 < 7 THEN 'online'
                           ELSE 'other_project' END AS kind
            FROM generate_series(1::bigint, {total}) AS i
        ) numbered
    ) described
) generated"
    )
}

/// Sends the warm-up and then the timed requests one after the other; every answer must
/// be a 200 with `groups` rows.
async fn api_timings(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    experiment_id: &str,
    groups: u64,
    args: &BenchArgs,
) -> Result<(LoadResult, Option<String>)> {
    let body = json!({ "experiment_id": experiment_id });
    let mut result = LoadResult::empty(Duration::ZERO);
    let mut note = None;
    for n in 0..args.warmup_requests + args.requests {
        let started = Instant::now();
        let response = client.post(url).bearer_auth(token).json(&body).send().await;
        let outcome = match response {
            Ok(response) => {
                let status = response.status();
                match response.bytes().await {
                    Ok(answer) if status == reqwest::StatusCode::OK => Ok(answer),
                    Ok(answer) => Err(format!("{status}: {}", String::from_utf8_lossy(&answer))),
                    Err(error) => Err(format!("{status}, reading the body: {error}")),
                }
            }
            Err(error) => Err(format!("{error:#}")),
        };
        let finished = Instant::now();
        let outcome = outcome.and_then(|answer| {
            let parsed: Value = serde_json::from_slice(&answer).map_err(|e| format!("not JSON ({e})"))?;
            let rows = parsed["results"].as_array().map_or(0, Vec::len) as u64;
            if rows == groups { Ok(1) } else { Err(format!("{rows} rows, expected {groups}")) }
        });
        if let Err(error) = &outcome
            && n == 0
        {
            bail!("POST {url} failed: {error}");
        }
        if n >= args.warmup_requests {
            result.elapsed += finished - started;
            result.record(outcome, started, finished);
        }
        if finished - started > API_GIVE_UP {
            let stopped = format!(
                "offline items: API request {} of {} took {:.1} s; the API measurement stopped there.",
                n + 1,
                args.warmup_requests + args.requests,
                (finished - started).as_secs_f64()
            );
            // A request this slow fails the run, whether it was timed or a warm-up.
            result.errors += 1;
            result.first_error.get_or_insert_with(|| stopped.clone());
            note = Some(stopped);
            break;
        }
    }
    result.latencies_us.sort_unstable();
    Ok((result, note))
}

/// The psql script: the adapter's statement prepared with the service's parameters,
/// executed for warm-up, then under `\timing` (output discarded), then under
/// `EXPLAIN (ANALYZE, TIMING OFF)` for the server-side execution time; and once more
/// with the generic plan.
///
/// Custom plans are forced for the timed executions: they are what a server connection
/// runs for its first five executions of the statement, and what PostgreSQL can do with
/// these parameters. From the sixth on, PostgreSQL may switch to the generic plan (when
/// its estimated cost is lower); that one is timed separately, under a timeout.
fn psql_script(project_id: &str, experiment_id: &str, args: &BenchArgs) -> String {
    timing_script(
        &format!(
            "PREPARE items(bigint, text, timestamptz, timestamptz, bigint) AS\n{};\n",
            adapters_postgres::statements::experiment_items_sql()
        ),
        &format!("EXECUTE items({project_id}, '{experiment_id}', NULL, NULL, {MAX_EXPERIMENT_ITEMS});\n"),
        args,
    )
}

/// A psql script that prepares a statement (`prepare`) and runs `execute` for warm-up, then
/// under `\timing` (output discarded), then under `EXPLAIN (ANALYZE, TIMING OFF)`, custom
/// plans forced; and once more with the generic plan, under a timeout, after
/// `GENERIC_MARKER`. Parsed by [`PsqlTimings`].
pub(super) fn timing_script(prepare: &str, execute: &str, args: &BenchArgs) -> String {
    let mut script = format!("{prepare}SET plan_cache_mode = force_custom_plan;\n\\o /dev/null\n");
    for _ in 0..args.warmup_requests {
        script.push_str(execute);
    }
    script.push_str("\\timing on\n");
    for _ in 0..args.requests {
        script.push_str(execute);
    }
    script.push_str("\\timing off\n\\o\n");
    for _ in 0..args.requests {
        let _ = write!(script, "EXPLAIN (ANALYZE, TIMING OFF) {execute}");
    }
    let _ = write!(
        script,
        "\\echo '{GENERIC_MARKER}'\n\\set ON_ERROR_STOP 0\nSET plan_cache_mode = force_generic_plan;\n\
         SET statement_timeout = '{GENERIC_PLAN_TIMEOUT_SECS}s';\nEXPLAIN (ANALYZE, TIMING OFF) {execute}"
    );
    script
}

/// What the psql script printed.
#[derive(Debug, Default, PartialEq)]
pub(super) struct PsqlTimings {
    /// `\timing`'s `Time: N ms` lines, in milliseconds.
    pub(super) client_ms: Vec<f64>,
    /// EXPLAIN ANALYZE's `Execution Time: N ms` lines.
    pub(super) execution_ms: Vec<f64>,
    /// The `actual rows` of the first plan's top node.
    pub(super) rows: Option<u64>,
    /// The `Execution Time` after [`GENERIC_MARKER`]: of the generic plan.
    pub(super) generic_ms: Option<f64>,
}

/// Writes `script` to `file_name`, runs it in psql and checks that it printed `runs`
/// timings of each kind; returns them with psql's output.
pub(super) async fn timed_in_psql(
    setup: &Setup<'_>,
    file_name: &str,
    script: &str,
    runs: u64,
    signals: &mut Signals,
) -> Result<(PsqlTimings, String)> {
    let script_file = setup.dir.join(file_name);
    std::fs::write(&script_file, script).with_context(|| format!("writing {}", script_file.display()))?;
    let out = psql(setup.pg, &["-tA", "-f", &script_file.to_string_lossy()], signals).await?;
    let timings = PsqlTimings::parse(&out);
    if timings.client_ms.len() as u64 != runs || timings.execution_ms.len() as u64 != runs {
        bail!(
            "psql printed {} `Time:` and {} `Execution Time:` lines, expected {runs} each:\n{out}",
            timings.client_ms.len(),
            timings.execution_ms.len(),
        );
    }
    Ok((timings, out))
}

fn ms_of(value: f64) -> String {
    format!("{value:.2} ms")
}

impl PsqlTimings {
    /// `\timing`'s median, in milliseconds.
    pub(super) fn p50(&self) -> f64 {
        median(&self.client_ms)
    }

    /// EXPLAIN ANALYZE's median execution time.
    pub(super) fn execution_p50(&self) -> f64 {
        median(&self.execution_ms)
    }

    /// The lines every psql yardstick shows.
    pub(super) fn lines(&self) -> Vec<(String, String)> {
        vec![
            ("psql p50 latency (\\timing)".to_owned(), ms_of(self.p50())),
            ("psql mean latency (\\timing)".to_owned(), ms_of(mean(&self.client_ms))),
            ("psql p50 EXPLAIN ANALYZE exec time".to_owned(), ms_of(self.execution_p50())),
        ]
    }

    /// `what`: p50, mean and execution time, for the summary's yardstick column.
    pub(super) fn yardstick(&self, what: &str) -> String {
        format!(
            "{what}: p50 {} (mean {}; execution {})",
            ms_of(self.p50()),
            ms_of(mean(&self.client_ms)),
            ms_of(self.execution_p50())
        )
    }

    pub(super) fn parse(output: &str) -> Self {
        let mut timings = Self::default();
        let ms = |rest: &str| rest.split_whitespace().next().and_then(|n| n.parse::<f64>().ok());
        let mut generic = false;
        for line in output.lines().map(str::trim) {
            if line == GENERIC_MARKER {
                generic = true;
            } else if let Some(value) = line.strip_prefix("Time: ").and_then(ms) {
                timings.client_ms.push(value);
            } else if let Some(value) = line.strip_prefix("Execution Time: ").and_then(ms) {
                if generic {
                    timings.generic_ms = Some(value);
                } else {
                    timings.execution_ms.push(value);
                }
            } else if timings.rows.is_none()
                && let Some((_, rest)) = line.split_once("(actual rows=")
            {
                timings.rows = rest.split([' ', ')']).next().and_then(|n| n.parse().ok());
            }
        }
        timings
    }
}

pub(super) fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

pub(super) fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psql_output_yields_client_and_execution_times_and_the_row_count() {
        let output = "Time: 41.250 ms\nTime: 1234.500 ms (00:01.235)\n\
                      Sort  (cost=1.00..2.00 rows=10 width=8) (actual rows=6000 loops=1)\n\
                      \u{20}\u{20}->  Seq Scan on t  (cost=0.00..1.00 rows=10 width=8) (actual rows=7 loops=1)\n\
                      Planning Time: 0.100 ms\nExecution Time: 38.900 ms\n\
                      Limit  (actual rows=5 loops=1)\nExecution Time: 40.100 ms\n\
                      -- generic plan --\nSort  (actual rows=6000 loops=1)\nExecution Time: 46127.360 ms\n";
        let timings = PsqlTimings::parse(output);
        assert_eq!(timings.client_ms, [41.25, 1234.5]);
        assert_eq!(timings.execution_ms, [38.9, 40.1]);
        assert_eq!(timings.rows, Some(6000));
        assert_eq!(timings.generic_ms, Some(46127.36));
        let timed_out = PsqlTimings::parse("Execution Time: 1.0 ms\n-- generic plan --\n");
        assert_eq!(timed_out.generic_ms, None);
        assert_eq!(PsqlTimings::parse(""), PsqlTimings::default());
    }

    #[test]
    fn a_slow_or_timed_out_generic_plan_is_flagged() {
        assert!(generic_plan_note(Some(500.0), 200.0, "500 ms").is_some());
        assert!(generic_plan_note(None, 200.0, "> 120 s").is_some());
        assert!(generic_plan_note(Some(250.0), 200.0, "250 ms").is_none());
    }

    #[test]
    fn median_and_mean() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
        assert_eq!(mean(&[1.0, 2.0, 6.0]), 3.0);
    }

    #[test]
    fn the_items_query_is_the_adapters_with_the_parameters_the_bench_binds() {
        let sql = adapters_postgres::statements::experiment_items_sql();
        for parameter in ["$1", "$2", "$3::timestamptz", "$4::timestamptz", "LIMIT $5"] {
            assert!(sql.contains(parameter), "{parameter}");
        }
    }

    #[test]
    fn the_seed_puts_the_benchmarked_experiment_first() {
        let sql = seed_sql("42", "abc", 6000, 1_000_000);
        assert!(sql.contains("WHEN i <= 6000 THEN 'bench'"));
        // bigint: `i * 7919` passes 2^31 from i = 271 183 on.
        assert!(sql.contains("generate_series(1::bigint, 1000000)"));
        assert!(sql.contains("ELSE 42 END AS project_id"));
        assert!(sql.contains("THEN 'abc'"));
    }
}
