//! summary: `POST llm_analytics/evaluation_summary/` over `--seed-events` stored
//! `$ai_evaluation` events, `--summary-runs` of them runs of the benchmarked evaluation.
//!
//! 1. The first request computes the summary (one chat completion of the fake OpenAI,
//!    which answers at once) and caches it; then `--requests` cached requests one at a
//!    time, then the cached request from `--connections` connections for `--seconds`.
//! 2. Every request, cached or not, reads the evaluation's newest 250 runs (the cache key
//!    hashes the run set). The run query's share of a cached request is estimated as the
//!    cached request's p50 minus the p50 of the same request for an evaluation without
//!    runs (a 400 after the same auth, rate limit, evaluation lookup and an empty run
//!    query; it lacks only the cache lookup, so the estimate errs high), and set beside
//!    the adapter's run query (`evaluation_runs`) executed by `psql` on the same data.
//!
//! The summary is rate-limited to 50 requests a minute per API key (200/h, 500/day), and
//! every request counts, cached or not. So the requests go through a pool of personal API
//! keys of the bench user, inserted with SQL before the load, each used for exactly
//! [`KEY_BUDGET`] requests (request n takes key n / [`KEY_BUDGET`]): no key ever reaches
//! a limit, and no request is throttled. The pool is sized for [`PLANNED_RPS`]; should
//! it run dry, the load stops early and says so.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use adapters_postgres::statements::EVALUATION_RUNS;
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::load::{ClosedLoop, closed_loop};
use super::offline_items::{GENERIC_PLAN_TIMEOUT_SECS, SEED_DAYS, ensure_partitions_sql, timed_in_psql, timing_script};
use super::{BenchArgs, LoadResult, Measured, Setup, SummaryRow, http_client, ms, psql, psql_value, thousands};
use crate::dev::scalar;
use crate::process::{Interrupted, Signals};

/// The ratio cached-request latency / psql latency of the run query we aim below.
const TARGET_RATIO: f64 = 2.0;
/// And the cached-request latency we aim below, in milliseconds.
const TARGET_MS: f64 = 50.0;
/// `MAX_RUNS` of the summary service: the `LIMIT` it binds.
const MAX_RUNS: u64 = 250;
/// Requests per API key of the pool: below the 50/min limit, which counts every request.
const KEY_BUDGET: u64 = 45;
/// The request rate the key pool is sized for.
const PLANNED_RPS: u64 = 20_000;
/// What the fake model answers; `{id}` is a generation among the analysed runs.
const MODEL_ANSWER: &str = r#"{"overall_assessment": "Most answers are polite; failures skip the greeting.",
"pass_patterns": [{"title": "Greets", "description": "Opens with a greeting", "frequency": "common",
                   "example_generation_ids": ["{id}"]}],
"fail_patterns": [{"title": "Curt", "description": "Answers without a greeting", "frequency": "occasional",
                   "example_generation_ids": ["{id}"]}],
"na_patterns": [],
"recommendations": ["Always greet the user", "Thank the user at the end"]}"#;

pub(super) async fn run(setup: &Setup<'_>, args: &BenchArgs, signals: &mut Signals) -> Result<Vec<Measured>> {
    let client = http_client(args.connections)?;
    let evaluation_id = create_evaluation(&client, setup, "bench politeness").await?;
    let empty_evaluation_id = create_evaluation(&client, setup, "bench without runs").await?;
    let runs = args.summary_runs;
    let seed_events = args.seed_events.max(runs);

    eprintln!("xtask: summary: seeding {seed_events} $ai_evaluation events, {runs} of evaluation {evaluation_id}");
    psql_value(setup.pg, &ensure_partitions_sql(), signals).await?;
    psql_value(setup.pg, "TRUNCATE ai_events, ai_event_ids", signals).await?;
    let started = Instant::now();
    psql(setup.pg, &["-c", &seed_sql(setup.project_id, &evaluation_id, runs, seed_events)], signals).await?;
    let seed_time = started.elapsed();
    psql(setup.pg, &["-c", "VACUUM (ANALYZE) ai_events"], signals).await?;
    let stored: u64 = psql_value(setup.pg, "SELECT count(*) FROM ai_events", signals).await?.parse()?;
    eprintln!("xtask: summary: {stored} events seeded in {:.1} s", seed_time.as_secs_f64());

    // A generation the model cites: the newest run's, so it is among the analysed ones.
    let newest = psql_value(
        setup.pg,
        &format!(
            "SELECT target_event_id FROM ai_events WHERE project_id = {} AND evaluation_id = '{evaluation_id}' \
             ORDER BY timestamp DESC, uuid DESC LIMIT 1",
            setup.project_id
        ),
        signals,
    )
    .await?;
    setup.fake_openai.set_chat_content(&MODEL_ANSWER.replace("{id}", &newest));

    let load_keys = (args.warmup + args.seconds) * PLANNED_RPS / KEY_BUDGET + 1;
    let sequential_keys = 2 * (args.warmup_requests + args.requests).div_ceil(KEY_BUDGET);
    let keys = Arc::new(KeyPool::create(setup, load_keys + sequential_keys, signals).await?);

    let url = format!("{}/api/environments/{}/llm_analytics/evaluation_summary/", setup.base_url, setup.project_id);
    let body: Arc<[u8]> = serde_json::to_vec(&json!({ "evaluation_id": evaluation_id, "filter": "all" }))?.into();
    let expected = runs.min(MAX_RUNS);

    // The first request: computes and caches.
    let chats_before = setup.fake_openai.chat_requests();
    let started = Instant::now();
    let first = send(&client, &url, &format!("Bearer {}", setup.personal_key), &body, Expect::Summary).await;
    let first_time = started.elapsed();
    let first = first.map_err(anyhow::Error::msg).with_context(|| format!("POST {url} (the first, uncached)"))?;
    let first: Value = serde_json::from_slice(&first).context("the first summary is not JSON")?;
    let analyzed = first["statistics"]["total_analyzed"].as_u64();
    if analyzed != Some(expected) {
        bail!("the first summary analysed {analyzed:?} runs, expected {expected}: {first}");
    }
    let first_chats = setup.fake_openai.chat_requests() - chats_before;

    eprintln!(
        "xtask: summary: POST {url}: {} warm-up + {} cached requests one at a time",
        args.warmup_requests, args.requests
    );
    let chats_before = setup.fake_openai.chat_requests();
    let sequential = tokio::select! {
        sequential = sequential_requests(&client, &url, &body, Expect::Summary, &keys, args) => sequential?,
        sig = signals.recv() => return Err(Interrupted(sig).into()),
    };
    // The same request for an evaluation without runs: everything but the cache lookup,
    // with a run query that finds nothing at once. Cached minus this is an upper bound
    // of what the run query costs inside the server.
    eprintln!("xtask: summary: the same, one at a time, for an evaluation without runs (400)");
    let empty_body: Arc<[u8]> =
        serde_json::to_vec(&json!({ "evaluation_id": empty_evaluation_id, "filter": "all" }))?.into();
    let baseline = tokio::select! {
        baseline = sequential_requests(&client, &url, &empty_body, Expect::NoRuns, &keys, args) => baseline?,
        sig = signals.recv() => return Err(Interrupted(sig).into()),
    };

    eprintln!(
        "xtask: summary: cached requests from {} connections, {}s warm-up + {}s measured, {} API keys",
        args.connections,
        args.warmup,
        args.seconds,
        thousands(keys.tokens.len() as f64)
    );
    let load = tokio::select! {
        load = http_load(&client, &url, &body, &keys, args) => load?,
        sig = signals.recv() => return Err(Interrupted(sig).into()),
    };
    let cached_chats = setup.fake_openai.chat_requests() - chats_before;
    if load.result.ok == 0 {
        bail!(
            "no cached request succeeded{}",
            load.result.first_error.clone().map(|e| format!(" (first error: {e})")).unwrap_or_default()
        );
    }

    eprintln!(
        "xtask: summary: the run query in psql, {} warm-up + {} timed executions",
        args.warmup_requests, args.requests
    );
    let script = psql_script(setup.project_id, &evaluation_id, args);
    let (timings, out) = timed_in_psql(setup, "summary-runs.sql", &script, args.requests, signals).await?;
    if timings.rows != Some(expected) {
        bail!("the run query in psql returned {:?} rows, expected {expected}:\n{out}", timings.rows);
    }

    let ms_of = |value: f64| format!("{value:.2} ms");
    let seq_p50 = sequential.percentile(50.0).unwrap_or_default().as_secs_f64() * 1e3;
    let seq_mean = sequential.mean().unwrap_or_default().as_secs_f64() * 1e3;
    let (psql_p50, exec_p50) = (timings.p50(), timings.execution_p50());
    let generic = timings.generic_ms.map_or_else(|| format!("> {GENERIC_PLAN_TIMEOUT_SECS} s (timed out)"), ms_of);
    let base_p50 = baseline.percentile(50.0).unwrap_or_default().as_secs_f64() * 1e3;
    // The run query's share of a cached request: what the request without runs lacks.
    let in_api = (seq_p50 - base_p50).max(0.0);
    let ratio = in_api / psql_p50;
    let rps = load.result.per_second(load.result.ok);

    let mut notes = Vec::new();
    // The adapter runs the statement as a cached prepared statement: from the sixth
    // execution on a connection PostgreSQL may use the generic plan.
    let generic_slow = timings.generic_ms.is_none_or(|generic| generic > TARGET_RATIO * exec_p50.max(1.0));
    if generic_slow {
        notes.push(format!(
            "summary: the run query's GENERIC plan takes {generic} against {} with custom plans; the adapter \
             caches the prepared statement, so a pooled connection switches to it after 5 executions.",
            ms_of(exec_p50)
        ));
    }
    if cached_chats > 0 {
        notes.push(format!("summary: {cached_chats} LLM calls during the cached requests (expected none)."));
    }
    if let Some(dry) = load.ran_dry_after {
        notes.push(format!(
            "summary: the {} API keys (of {KEY_BUDGET} requests each) ran out {:.1} s into the measured window; \
             the requests/s is over that shorter window.",
            thousands(keys.tokens.len() as f64),
            dry.as_secs_f64()
        ));
    }
    let errors = sequential.errors + baseline.errors + load.result.errors;
    let first_error = sequential.first_error.clone().or_else(|| baseline.first_error.clone());

    let load_part = Measured {
        title: format!("summary: cached evaluation_summary/, {} connections", args.connections),
        lines: vec![
            (
                "seeded events / runs of the evaluation".to_owned(),
                format!("{} / {}", thousands(stored as f64), thousands(runs as f64)),
            ),
            ("seed INSERT ... SELECT time".to_owned(), format!("{:.1} s", seed_time.as_secs_f64())),
            ("first (uncached) request latency".to_owned(), ms(Some(first_time))),
            ("LLM calls of the first request".to_owned(), first_chats.to_string()),
            ("cached requests/s (200 only)".to_owned(), thousands(rps)),
            ("cached p50 latency".to_owned(), ms(load.result.percentile(50.0))),
            ("cached p99 latency".to_owned(), ms(load.result.percentile(99.0))),
            ("cached errors (non-200)".to_owned(), load.result.errors.to_string()),
            ("LLM calls of the cached requests".to_owned(), cached_chats.to_string()),
            (format!("API keys (≤ {KEY_BUDGET} requests each)"), thousands(keys.tokens.len() as f64)),
        ],
        summary: SummaryRow::absolute(
            format!(
                "evaluation summary, cached, {} connections ({} runs of {} events)",
                args.connections,
                thousands(runs as f64),
                thousands(stored as f64)
            ),
            format!(
                "{} req/s (p50 {}, p99 {}); first, uncached: {}",
                thousands(rps),
                ms(load.result.percentile(50.0)),
                ms(load.result.percentile(99.0)),
                ms(Some(first_time))
            ),
            "no error, no LLM call".to_owned(),
            load.result.errors == 0 && cached_chats == 0 && first_chats > 0,
        ),
        notes,
        errors: load.result.errors,
        first_error: load.result.first_error.clone(),
    };
    let query_part = Measured {
        title: format!("summary: run query, newest {expected} of {} runs", thousands(runs as f64)),
        lines: vec![
            ("cached request p50, one at a time".to_owned(), ms_of(seq_p50)),
            ("cached request mean, one at a time".to_owned(), ms_of(seq_mean)),
            ("no-runs request (400) p50, one at a time".to_owned(), ms_of(base_p50)),
            ("run query in the API (p50 difference)".to_owned(), ms_of(in_api)),
            ("request errors (unexpected status)".to_owned(), (sequential.errors + baseline.errors).to_string()),
            ("psql exec time with the generic plan".to_owned(), generic),
            ("run query: API / psql p50".to_owned(), format!("{ratio:.3}")),
            ("whole cached request / psql p50".to_owned(), format!("{:.3}", seq_p50 / psql_p50)),
        ]
        .into_iter()
        .chain(timings.lines())
        .collect(),
        summary: SummaryRow {
            measurement: format!(
                "summary run query: newest {expected} of {} runs among {} events",
                thousands(runs as f64),
                thousands(stored as f64)
            ),
            server: format!(
                "{} (cached request p50 {} minus no-runs request p50 {}, one at a time)",
                ms_of(in_api),
                ms_of(seq_p50),
                ms_of(base_p50)
            ),
            yardstick: timings.yardstick("run query in `psql`"),
            ratio: format!("{ratio:.2}"),
            target: format!("< {TARGET_RATIO}, cached request < {TARGET_MS:.0} ms"),
            met: ratio < TARGET_RATIO
                && seq_p50 < TARGET_MS
                && sequential.errors + baseline.errors == 0
                && !generic_slow,
        },
        notes: Vec::new(),
        errors: sequential.errors + baseline.errors,
        first_error,
    };
    debug_assert_eq!(errors, load_part.errors + query_part.errors);
    Ok(vec![load_part, query_part])
}

/// Creates the benchmarked evaluation; returns its id.
async fn create_evaluation(client: &reqwest::Client, setup: &Setup<'_>, name: &str) -> Result<String> {
    let url = format!("{}/api/environments/{}/evaluations/", setup.base_url, setup.project_id);
    let body = json!({
        "name": name,
        "description": "Whether the answer is polite",
        "evaluation_type": "llm_judge",
        "evaluation_config": { "prompt": "Is the answer polite? Answer true when it greets the user." },
        "output_type": "boolean_with_na",
    });
    let response =
        client.post(&url).bearer_auth(setup.personal_key).json(&body).send().await.context("POST evaluations/")?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if !status.is_success() {
        bail!("POST {url} answered {status}: {text}");
    }
    let created: Value = serde_json::from_str(&text).with_context(|| format!("POST {url} answered {text}"))?;
    scalar(&created["id"]).with_context(|| format!("POST {url} answered no id: {text}"))
}

/// Personal API keys of the bench user, each for [`KEY_BUDGET`] requests.
struct KeyPool {
    /// `Bearer …` header values.
    tokens: Vec<String>,
    /// Requests handed a key so far.
    taken: AtomicU64,
}

impl KeyPool {
    /// Inserts `count` keys with the scopes and projects of the bench's own key (tokens
    /// `phx_` + a random prefix + a counter; stored, as the service stores them, as the
    /// hex SHA-256 of the token).
    async fn create(setup: &Setup<'_>, count: u64, signals: &mut Signals) -> Result<Self> {
        let prefix = format!("{:032x}", rand::random::<u128>());
        let sql = format!(
            "INSERT INTO personal_api_keys (id, user_id, label, token_hash, scopes, project_ids)
             SELECT gen_random_uuid(), k.user_id, 'bench-summary-' || n,
                    encode(sha256(convert_to('phx_{prefix}' || lpad(n::text, 12, '0'), 'UTF8')), 'hex'),
                    k.scopes, k.project_ids
             FROM personal_api_keys k CROSS JOIN generate_series(1, {count}) AS n
             WHERE k.label = 'bench'"
        );
        psql(setup.pg, &["-c", &sql], signals).await?;
        let tokens = (1..=count).map(|n| format!("Bearer phx_{prefix}{n:012}")).collect();
        Ok(Self { tokens, taken: AtomicU64::new(0) })
    }

    /// The key for the next request, or `None` when every key has had its budget.
    fn next(&self) -> Option<&str> {
        let n = self.taken.fetch_add(1, Ordering::Relaxed);
        self.tokens.get(usize::try_from(n / KEY_BUDGET).ok()?).map(String::as_str)
    }
}

/// What a request must answer.
#[derive(Clone, Copy, PartialEq)]
enum Expect {
    /// A 200 with a summary.
    Summary,
    /// The 400 of an evaluation without runs.
    NoRuns,
}

/// One summary request; the answer's body when it is what `expect` says.
async fn send(
    client: &reqwest::Client,
    url: &str,
    auth: &str,
    body: &Arc<[u8]>,
    expect: Expect,
) -> Result<Vec<u8>, String> {
    let response = client
        .post(url)
        .header("authorization", auth)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .map_err(|error| format!("{error:#}"))?;
    let status = response.status();
    let answer = response.bytes().await.map_err(|error| format!("{status}, reading the body: {error}"))?;
    let (want_status, marker): (_, &[u8]) = match expect {
        Expect::Summary => (reqwest::StatusCode::OK, b"\"overall_assessment\""),
        Expect::NoRuns => (reqwest::StatusCode::BAD_REQUEST, b"No evaluation runs found"),
    };
    if status != want_status || !answer.windows(marker.len()).any(|w| w == marker) {
        return Err(format!("{status}: {}", String::from_utf8_lossy(&answer)));
    }
    Ok(answer.to_vec())
}

/// The warm-up and then the timed cached requests, one after the other.
async fn sequential_requests(
    client: &reqwest::Client,
    url: &str,
    body: &Arc<[u8]>,
    expect: Expect,
    keys: &KeyPool,
    args: &BenchArgs,
) -> Result<LoadResult> {
    let mut result = LoadResult::empty(Duration::ZERO);
    for n in 0..args.warmup_requests + args.requests {
        let auth = keys.next().context("the API key pool ran dry")?;
        let started = Instant::now();
        let outcome = send(client, url, auth, body, expect).await.map(|_| 1);
        let finished = Instant::now();
        if n >= args.warmup_requests {
            result.elapsed += finished - started;
            result.record(outcome, started, finished);
        }
    }
    result.latencies_us.sort_unstable();
    Ok(result)
}

/// `--connections` workers sending cached requests back to back (the shared closed loop),
/// each with the next key of the pool; the window ends when the pool runs dry.
async fn http_load(
    client: &reqwest::Client,
    url: &str,
    body: &Arc<[u8]>,
    keys: &Arc<KeyPool>,
    args: &BenchArgs,
) -> Result<ClosedLoop> {
    let (client, url, body, keys): (_, Arc<str>, _, _) = (client.clone(), url.into(), body.clone(), keys.clone());
    closed_loop(args.connections, args, move |_, _| {
        let auth = keys.next()?.to_owned();
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        Some(async move { send(&client, &url, &auth, &body, Expect::Summary).await.map(|_| 1) })
    })
    .await
}

/// The events: the benchmarked evaluation's `runs` first (of them 10 % not applicable, 60 %
/// pass, 30 % fail), then other evaluations of the project (half the rest) and of 20 other
/// projects, all spread over the last [`SEED_DAYS`] days.
pub(super) fn seed_sql(project_id: &str, evaluation_id: &str, runs: u64, total: u64) -> String {
    let days_secs = SEED_DAYS * 86_400;
    let reasoning = "The answer greets the user, keeps a friendly tone and thanks them at the end; \
                     it never uses dismissive wording, so it counts as polite for this evaluation.";
    format!(
        "\
INSERT INTO ai_events (project_id, uuid, event, distinct_id, timestamp, trace_id, evaluation_id, target_event_id,
                       properties)
SELECT project_id, gen_random_uuid(), '$ai_evaluation', 'user-' || (i % 5000), ts,
       ai_property_text(p, '$ai_trace_id'), ai_property_text(p, '$ai_evaluation_id'),
       ai_property_text(p, '$ai_target_event_id'), p
FROM (
    SELECT i, project_id, ts,
           jsonb_build_object(
               '$ai_evaluation_id', evaluation,
               '$ai_evaluation_name', 'politeness',
               '$ai_target_event_id', md5('generation' || i)::uuid::text,
               '$ai_trace_id', md5('trace' || (i / 4))::uuid::text,
               '$ai_evaluation_applicable', i % 10 <> 0,
               '$ai_evaluation_reasoning', '{reasoning} (run ' || i || ')',
               '$ai_evaluation_key_type', 'provider_key',
               '$ai_model', 'gpt-4.1-mini', '$ai_provider', 'openai', '$lib', 'posthog-python')
           || CASE WHEN i % 10 = 0 THEN '{{}}'::jsonb
                   ELSE jsonb_build_object('$ai_evaluation_result', i % 10 < 7) END AS p
    FROM (
        SELECT i,
               CASE WHEN i <= {runs} OR i % 2 = 0 THEN {project_id} ELSE 1000000 + i % 20 END AS project_id,
               CASE WHEN i <= {runs} THEN '{evaluation_id}'
                    ELSE md5('evaluation' || (i % 100))::uuid::text END AS evaluation,
               now() - ((i * 7919) % {days_secs}) * interval '1 second' - (i % 1000) * interval '1 ms' AS ts
        FROM generate_series(1::bigint, {total}) AS i
    ) numbered
) generated"
    )
}

/// The psql script: the adapter's run query prepared with the service's parameters
/// (filter `all`, no generation ids, limit 250), executed for warm-up, then under
/// `\timing` (output discarded), then under `EXPLAIN (ANALYZE, TIMING OFF)`; custom plans
/// forced, as `offline_items` does; and once more with the generic plan.
fn psql_script(project_id: &str, evaluation_id: &str, args: &BenchArgs) -> String {
    timing_script(
        &format!("PREPARE runs(bigint, text, text, text[], bigint) AS\n{EVALUATION_RUNS};\n"),
        &format!("EXECUTE runs({project_id}, '{evaluation_id}', 'all', NULL, {MAX_RUNS});\n"),
        args,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runs_query_is_the_adapters_with_its_parameters() {
        for parameter in ["$1", "$2", "$3 = 'all'", "$4::text[]", "LIMIT $5"] {
            assert!(EVALUATION_RUNS.contains(parameter), "{parameter}");
        }
    }

    #[test]
    fn the_seed_puts_the_benchmarked_evaluation_first() {
        let sql = seed_sql("42", "abc", 10_000, 1_000_000);
        assert!(sql.contains("WHEN i <= 10000 OR i % 2 = 0 THEN 42"));
        assert!(sql.contains("WHEN i <= 10000 THEN 'abc'"));
        assert!(sql.contains("generate_series(1::bigint, 1000000)"));
        assert!(sql.contains("'{}'::jsonb"));
    }

    #[test]
    fn the_model_answer_is_json_citing_the_generation() {
        let answer: Value = serde_json::from_str(&MODEL_ANSWER.replace("{id}", "g-1")).unwrap();
        assert_eq!(answer["pass_patterns"][0]["example_generation_ids"][0], "g-1");
        assert_eq!(answer["recommendations"].as_array().map(Vec::len), Some(2));
    }
}
