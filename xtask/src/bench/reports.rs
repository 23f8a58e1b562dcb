//! Reports: the metrics query of one report period (the period and the previous one, as a
//! run computes them) over a million stored events, through the service's own adapter,
//! beside the same statement in `psql`; and one scheduler tick (the due query, the gates,
//! the enqueue — what every replica runs each interval) over 10 000 reports of which 100
//! are due. The statements are the ones `adapters-postgres` exports, so the bench can only
//! time what the service runs.

use std::sync::Arc;
use std::time::Instant;

use adapters_postgres::statements::PERIOD_COUNTS;
use adapters_postgres::{PgJobQueue, PgReportEvents, PgReportStore};
use anyhow::{Context, Result, bail};
use chrono::Utc;
use domain::jobs::JobQueue;
use domain::reports::{Period, ReportEvents, ReportScheduler};
use domain::{EvaluationId, ProjectId};
use serde_json::json;

use super::offline_items::{PsqlTimings, mean, median, timing_script};
use super::report::{Measured, ReadTarget, SummaryRow, thousands};
use super::server::http_client;
use super::{BenchArgs, SERVER_DATABASE, Setup, psql, psql_value};
use crate::dev::scalar;
use crate::process::Signals;

const TICK_TARGET_MS: f64 = 1_000.0;
const REPORTS: u64 = 10_000;
const DUE: u64 = 100;
/// Ticks timed (after one warm-up tick, which is also the one that enqueues).
const TICKS: usize = 10;

pub(super) async fn run(setup: &Setup<'_>, args: &BenchArgs, signals: &mut Signals) -> Result<Vec<Measured>> {
    let client = http_client(1)?;
    let response = client
        .post(format!("{}/api/environments/{}/evaluations/", setup.base_url, setup.project_id))
        .bearer_auth(setup.personal_key)
        .json(&json!({"name": "bench reports", "evaluation_type": "llm_judge", "evaluation_config": {"prompt": "Is the answer polite?"}}))
        .send()
        .await
        .context("creating the evaluation")?;
    if !response.status().is_success() {
        bail!("creating the evaluation: {}", response.text().await.unwrap_or_default());
    }
    let evaluation: serde_json::Value = response.json().await?;
    let evaluation_id = scalar(&evaluation["id"]).context("the evaluation has no id")?;
    let runs = args.summary_runs;
    let seed_events = args.seed_events.max(runs);
    eprintln!("xtask: reports: seeding {seed_events} $ai_evaluation events, {runs} of evaluation {evaluation_id}");
    psql_value(setup.pg, &super::offline_items::ensure_partitions_sql(), signals).await?;
    psql_value(setup.pg, "TRUNCATE ai_events, ai_event_ids", signals).await?;
    psql(setup.pg, &["-c", &super::summary::seed_sql(setup.project_id, &evaluation_id, runs, seed_events)], signals)
        .await?;
    psql(setup.pg, &["-c", "VACUUM (ANALYZE) ai_events"], signals).await?;

    let pool = adapters_postgres::connect(&setup.pg.url(SERVER_DATABASE), 4).await?;
    let project = ProjectId(setup.project_id.parse().context("the project id")?);
    let evaluation = EvaluationId(evaluation_id.parse().context("the evaluation id")?);
    let metrics = metrics(setup, args, &pool, project, evaluation, seed_events, signals).await?;
    let tick = tick(setup, &pool, &evaluation_id, signals).await?;
    pool.close().await;
    Ok(vec![metrics, tick])
}

async fn metrics(
    setup: &Setup<'_>,
    args: &BenchArgs,
    pool: &adapters_postgres::PgPool,
    project: ProjectId,
    evaluation: EvaluationId,
    seed_events: u64,
    signals: &mut Signals,
) -> Result<Measured> {
    let reads = PgReportEvents::new(pool.clone());
    // A weekly report: the last 7 days beside the 7 before.
    let now = Utc::now();
    let period = Period { start: now - chrono::Duration::days(7), end: now };
    let mut timings_ms = Vec::new();
    let mut total = 0;
    for n in 0..(args.warmup_requests + args.requests) {
        let started = Instant::now();
        let current = reads.counts(project, evaluation, period).await?;
        let previous = reads.counts(project, evaluation, period.previous()).await?;
        if n >= args.warmup_requests {
            timings_ms.push(started.elapsed().as_secs_f64() * 1e3);
        }
        total = current.total() + previous.total();
        signals.check()?;
    }
    if total == 0 {
        bail!("the metrics query found no results of the evaluation in 14 days");
    }

    let prepare = format!("PREPARE counts(bigint, text, timestamptz, timestamptz) AS\n{PERIOD_COUNTS};\n");
    let (start, end, previous) =
        (period.start.to_rfc3339(), period.end.to_rfc3339(), period.previous().start.to_rfc3339());
    let execute = format!(
        "EXECUTE counts({}, '{}', '{start}', '{end}');\nEXECUTE counts({}, '{}', '{previous}', '{start}');\n",
        project.0, evaluation, project.0, evaluation
    );
    let script = timing_script(&prepare, &execute, args);
    let script_file = setup.dir.join("report_metrics.sql");
    std::fs::write(&script_file, script).context("writing the metrics script")?;
    let out = psql(setup.pg, &["-tA", "-f", &script_file.to_string_lossy()], signals).await?;
    let psql_timings = PsqlTimings::parse(&out);
    if psql_timings.client_ms.len() as u64 != 2 * args.requests {
        bail!("psql printed {} `Time:` lines, expected {}:\n{out}", psql_timings.client_ms.len(), 2 * args.requests);
    }
    // One metrics computation is both statements.
    let psql_pairs: Vec<f64> = psql_timings.client_ms.chunks(2).map(|pair| pair.iter().sum()).collect();
    let api_p50 = median(&timings_ms);
    let psql_p50 = median(&psql_pairs);
    let ratio = api_p50 / psql_p50;
    Ok(Measured {
        title: format!("reports: metrics of a weekly period, {} results in 14 days", thousands(total as f64)),
        lines: vec![
            ("seeded events".to_owned(), thousands(seed_events as f64)),
            ("service adapter p50 (period + previous)".to_owned(), format!("{api_p50:.2} ms")),
            ("service adapter mean".to_owned(), format!("{:.2} ms", mean(&timings_ms))),
            ("psql p50 (both statements, \\timing)".to_owned(), format!("{psql_p50:.2} ms")),
            ("adapter / psql p50".to_owned(), format!("{ratio:.2}")),
        ],
        summary: SummaryRow {
            measurement: format!(
                "report metrics (period + previous) over {} events, {} of the evaluation",
                thousands(seed_events as f64),
                thousands(args.summary_runs as f64)
            ),
            server: format!("p50 {api_p50:.2} ms through `PgReportEvents`"),
            yardstick: format!("the same statements in `psql`: p50 {psql_p50:.2} ms"),
            ratio: format!("{ratio:.2}"),
            target: ReadTarget::BESIDE_PSQL.describe(),
            met: ReadTarget::BESIDE_PSQL.met(ratio, api_p50),
        },
        notes: Vec::new(),
        errors: 0,
        first_error: None,
    })
}

/// 10 000 reports: 6 000 scheduled (50 past their date), 3 000 every_n (1 000 cooling
/// down, 1 975 on evaluations without new results, 25 on the seeded evaluation with
/// plenty), 1 000 alerts (975 on quiet evaluations, 25 on the seeded one, whose 24-hour
/// pass rate of ~78 % is below their 80 %).
fn seed_reports_sql(project_id: &str, evaluation_id: &str) -> String {
    format!(
        "\
INSERT INTO evaluations (id, project_id, name, evaluation_type, evaluation_config, output_type)
SELECT md5('bench-quiet-' || i)::uuid, {project_id}, 'quiet ' || i, 'llm_judge', '{{\"prompt\": \"x\"}}', 'boolean'
FROM generate_series(1, 100) AS i
ON CONFLICT DO NOTHING;
DELETE FROM evaluation_reports;
INSERT INTO evaluation_reports (id, project_id, evaluation_id, frequency, alert_condition, rrule, starts_at,
                                next_delivery_date, last_delivered_at, trigger_threshold, created_at)
SELECT gen_random_uuid(), {project_id},
       CASE WHEN (i > 6000 AND i <= 6025) OR (i > 9000 AND i <= 9025) THEN '{evaluation_id}'::uuid
            ELSE md5('bench-quiet-' || (i % 100 + 1))::uuid END,
       CASE WHEN i <= 6000 THEN 'scheduled' WHEN i <= 9000 THEN 'every_n' ELSE 'alert' END,
       CASE WHEN i > 9000 THEN '{{\"operator\": \"lt\", \"pass_rate\": 80, \"min_runs\": 20, \"window_minutes\": 1440}}'::jsonb END,
       CASE WHEN i <= 6000 THEN 'FREQ=HOURLY' ELSE '' END,
       CASE WHEN i <= 6000 THEN now() - interval '30 days' END,
       CASE WHEN i <= 50 THEN now() - interval '1 minute'
            WHEN i <= 6000 THEN now() + i * interval '1 minute' END,
       CASE WHEN i > 6025 AND i <= 7025 THEN now() - interval '10 minutes'
            WHEN i > 6000 AND i <= 6025 THEN now() - interval '3 days' END,
       100, now() - interval '40 days'
FROM generate_series(1, {REPORTS}) AS i;
ANALYZE evaluation_reports;"
    )
}

async fn tick(
    setup: &Setup<'_>,
    pool: &adapters_postgres::PgPool,
    evaluation_id: &str,
    signals: &mut Signals,
) -> Result<Measured> {
    psql(setup.pg, &["-c", &seed_reports_sql(setup.project_id, evaluation_id)], signals).await?;
    psql(setup.pg, &["-c", "DELETE FROM jobs WHERE kind = 'report_run'"], signals).await?;
    let queue = Arc::new(PgJobQueue::new(pool.clone()));
    let scheduler = ReportScheduler::new(
        Arc::new(PgReportStore::new(pool.clone())),
        Arc::new(PgReportEvents::new(pool.clone())),
        queue.clone(),
    );
    let mut timings_ms = Vec::new();
    let mut first_enqueued = 0;
    let mut due_seen = 0;
    for n in 0..=TICKS {
        let started = Instant::now();
        let now = Utc::now();
        let jobs = scheduler.due_jobs(now).await?;
        let enqueued = queue.enqueue(&jobs).await?;
        let elapsed = started.elapsed();
        if n == 0 {
            first_enqueued = enqueued;
            due_seen = jobs.len();
        } else {
            timings_ms.push(elapsed.as_secs_f64() * 1e3);
        }
        signals.check()?;
    }
    if first_enqueued != DUE || due_seen as u64 != DUE {
        bail!("the first tick found {due_seen} due reports and enqueued {first_enqueued}; expected {DUE}");
    }
    let p50 = median(&timings_ms);
    let worst = timings_ms.iter().copied().fold(0.0, f64::max);
    Ok(Measured {
        title: format!("reports: one scheduler tick over {} reports, {DUE} due", thousands(REPORTS as f64)),
        lines: vec![
            ("first tick: due / enqueued".to_owned(), format!("{due_seen} / {first_enqueued}")),
            (format!("tick p50 over {TICKS} ticks"), format!("{p50:.1} ms")),
            ("slowest tick".to_owned(), format!("{worst:.1} ms")),
        ],
        summary: SummaryRow {
            measurement: format!("scheduler tick: {} reports, {DUE} due", thousands(REPORTS as f64)),
            server: format!("p50 {p50:.1} ms, slowest {worst:.1} ms"),
            yardstick: "—".to_owned(),
            ratio: "—".to_owned(),
            target: format!("< {TICK_TARGET_MS:.0} ms"),
            met: worst < TICK_TARGET_MS,
        },
        notes: Vec::new(),
        errors: 0,
        first_error: None,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_bench_times_the_adapters_exported_statements() {
        assert!(adapters_postgres::statements::PERIOD_COUNTS.contains("$ai_evaluation"));
        assert!(adapters_postgres::statements::SCHEDULE_CANDIDATES.contains("evaluation_reports"));
    }
}
