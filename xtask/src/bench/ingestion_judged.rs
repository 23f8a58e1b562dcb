//! ingest, second measurement: `$ai_generation` events through `POST /batch/` to a project
//! with three enabled evaluations, so that every stored generation queues its judge job
//! (one per generation, listing the three evaluations) in its batch's transaction (spec
//! section 9).
//!
//! It runs against a `serve --api-only` server on a database of its own: nothing judges
//! the queued jobs while the load runs, so what is measured is ingestion with its job
//! writes, as the issue defines it. The yardstick is the first measurement's one-table
//! `\copy` rows/s.
//!
//! The generations carry tokens and a model of the pinned price table but no cost, so each
//! is priced as it is stored (spec section 5.2). The same load also runs against servers
//! with pricing off (`LLMA_PRICE_EVENTS=false`), each run on a database of its own, in the
//! order on, off, off, on: a later run meets a busier cluster (checkpoints, autovacuum of
//! the earlier runs' rows), which alone moved the ratio by 0.17 when the two ran once each,
//! and this order gives both the same share of early and late places; before each run the
//! previous database is vacuumed and a checkpoint taken (`settle`), so that what remains is
//! a slowly growing cluster rather than the previous run's background work. The third figure is
//! priced events/s over unpriced events/s, each the mean of its two runs; the judged-ingestion
//! figure is the first run's, as before (issue 20: at
//! most 10 % below).

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::ingestion::{EventWriter, ingest_load, write_generation};
use super::report::LoadResult;
use super::server::RunningServer;
use super::{
    BenchArgs, BenchProject, Measured, Setup, SummaryRow, call_api, http_client, ms, psql_value_in, serve_command,
    thousands,
};
use crate::dev::{Server, scalar};
use crate::process::{self, Interrupted, Signals};

/// The ratio ingestion events/s / one-table `\copy` rows/s we aim for.
const TARGET_RATIO: f64 = 0.5;
/// The ratio priced events/s / unpriced events/s we aim for.
const PRICING_TARGET_RATIO: f64 = 0.9;
/// The databases of the runs, in the order they run.
const RUNS: [(Pricing, &str); 4] = [
    (Pricing::On, "bench_judged"),
    (Pricing::Off, "bench_judged_unpriced_1"),
    (Pricing::Off, "bench_judged_unpriced_2"),
    (Pricing::On, "bench_judged_2"),
];
/// The enabled evaluations every generation matches.
const EVALUATIONS: [&str; 3] = ["relevance", "politeness", "groundedness"];
/// A user turn of about 600 characters, as a chat client sends.
const QUESTION: &str = "I ordered a pair of running shoes two weeks ago and the tracking page still says the \
                        parcel is waiting at the regional depot. The shop's help page says deliveries take \
                        three to five working days. Can you tell me whether I can cancel the order and get \
                        a refund, or whether I should wait a few more days? I also want to know if the \
                        express shipping fee I paid will be refunded, since the parcel clearly did not \
                        arrive express. Please answer in short steps and tell me which form to use.";
const ANSWER: &str = "You can ask for a refund of the express fee now: open Orders, choose the order, then \
                      Report a delivery problem. If the parcel has not moved in three more working days, \
                      the same form lets you cancel the order for a full refund.";

/// Whether the server prices generations as they arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pricing {
    On,
    Off,
}

/// One load's figures.
struct Ingested {
    load: LoadResult,
    events_per_s: f64,
    stored: u64,
    jobs: u64,
    judgements: u64,
    priced: u64,
}

/// The judged-ingestion measurement (pricing on) against the one-table `\copy`, and pricing
/// on against the same load with pricing off (run first).
pub(super) async fn run(
    setup: &Setup<'_>,
    args: &BenchArgs,
    one_table_rows_per_s: f64,
    signals: &mut Signals,
) -> Result<Vec<Measured>> {
    let mut priced = Vec::new();
    let mut unpriced = Vec::new();
    let mut previous = super::SERVER_DATABASE;
    for (pricing, database) in RUNS {
        settle(setup, previous, signals).await?;
        previous = database;
        let run = ingest(setup, args, pricing, database, signals).await?;
        let expected = if pricing == Pricing::On { run.stored } else { 0 };
        if run.priced != expected {
            bail!("pricing {pricing:?} priced {} of {} generations", run.priced, run.stored);
        }
        match pricing {
            Pricing::On => priced.push(run),
            Pricing::Off => unpriced.push(run),
        }
    }
    let pricing = pricing_measured(args, &priced, &unpriced);
    let first_priced = priced.swap_remove(0);
    Ok(vec![judged_measured(args, first_priced, one_table_rows_per_s), pricing])
}

/// Leaves nothing of the load before for the cluster to do during the next run: the
/// previous database vacuumed and analysed (else autovacuum takes up its 200,000 new rows
/// mid-run) and a checkpoint (else the dirty pages are written out mid-run). Without it
/// the fourth run, priced like the first, measured 13,250–15,550 events/s against the
/// first's 15,800–16,250 in three bench runs, which alone put the pricing ratio below 0.9.
async fn settle(setup: &Setup<'_>, previous: &str, signals: &mut Signals) -> Result<()> {
    psql_value_in(setup.pg, previous, "VACUUM (ANALYZE)", signals).await?;
    psql_value_in(setup.pg, previous, "CHECKPOINT", signals).await?;
    Ok(())
}

async fn ingest(
    setup: &Setup<'_>,
    args: &BenchArgs,
    pricing: Pricing,
    database: &str,
    signals: &mut Signals,
) -> Result<Ingested> {
    setup.pg.ensure_database(database)?;
    process::check_status(process::run(&mut setup.migrate(database), signals).await?, "`llm-analytics migrate`")?;
    let server = Server {
        binary: setup.server.binary.clone(),
        database_url: setup.pg.url(database),
        keys: setup.server.keys.clone(),
    };
    let BenchProject { id: project_id, token, personal_key } =
        BenchProject::create(&server, "Judged ingestion", "judged@example.com")?;

    let mut serve = serve_command(&server, setup.fake_openai, &["--api-only"]);
    serve.env("LLMA_PRICE_EVENTS", if pricing == Pricing::On { "true" } else { "false" });
    let mut running = RunningServer::start(serve, signals).await?;
    let client = http_client(args.senders)?;
    let api =
        Api { client: &client, base_url: &running.base_url, personal_key: &personal_key, project_id: &project_id };
    api.enable_evaluations().await?;

    let url = format!("{}/batch/", running.base_url);
    eprintln!(
        "xtask: ingest: POST {url}, {} senders x {} $ai_generation events, {} evaluations enabled, pricing {}",
        args.senders,
        args.batch_size,
        EVALUATIONS.len(),
        if pricing == Pricing::On { "on" } else { "off" }
    );
    let write_event: EventWriter = Arc::new(generation_json);
    let load = tokio::select! {
        load = ingest_load(&client, &url, &token, &write_event, 1_200, args) => load?,
        sig = signals.recv() => return Err(Interrupted(sig).into()),
    };
    running.stop().await?;
    if load.ok == 0 {
        bail!("no batch was accepted{}", load.first_error.map(|e| format!(" (first error: {e})")).unwrap_or_default());
    }
    let stored = count(setup, database, "SELECT count(*) FROM ai_events", signals).await?;
    let jobs = count(setup, database, "SELECT count(*) FROM jobs", signals).await?;
    let judgements = count(
        setup,
        database,
        "SELECT coalesce(sum(jsonb_array_length(payload -> 'evaluations')), 0) FROM jobs",
        signals,
    )
    .await?;
    let priced =
        count(setup, database, "SELECT count(*) FROM ai_events WHERE properties ? '$ai_total_cost_usd'", signals)
            .await?;
    let expected = stored * EVALUATIONS.len() as u64;
    if jobs != stored || judgements != expected {
        bail!(
            "{stored} generations stored queued {jobs} jobs for {judgements} judgements, expected {stored} for {expected}"
        );
    }
    let events_per_s = load.per_second(load.items);
    Ok(Ingested { load, events_per_s, stored, jobs, judgements, priced })
}

fn judged_measured(args: &BenchArgs, ingested: Ingested, one_table_rows_per_s: f64) -> Measured {
    let Ingested { load, events_per_s, stored, jobs, judgements, .. } = ingested;
    let ratio = events_per_s / one_table_rows_per_s;
    Measured::of_load(
        format!(
            "ingest: POST /batch/, {} senders x {} $ai_generation events, {} evaluations enabled",
            args.senders,
            args.batch_size,
            EVALUATIONS.len()
        ),
        vec![
            ("server events/s (stored, priced)".to_owned(), thousands(events_per_s)),
            ("judgements queued/s".to_owned(), thousands(events_per_s * EVALUATIONS.len() as f64)),
            ("server batch p50 latency".to_owned(), ms(load.percentile(50.0))),
            ("server batch p99 latency".to_owned(), ms(load.percentile(99.0))),
            ("server errors (non-200)".to_owned(), load.errors.to_string()),
            (
                "jobs / judgements in the table / generations stored".to_owned(),
                format!("{jobs} / {judgements} / {stored}"),
            ),
            ("server events/s / one-table \\copy rows/s".to_owned(), format!("{ratio:.3}")),
        ],
        SummaryRow::ratio_at_least(
            format!(
                "ingestion, `$ai_generation` with {} enabled evaluations (each generation's judge job queued in the batch's transaction), {} senders × {} events",
                EVALUATIONS.len(),
                args.senders,
                args.batch_size
            ),
            format!(
                "{} events/s, {} judgements queued/s (batch p50 {})",
                thousands(events_per_s),
                thousands(events_per_s * EVALUATIONS.len() as f64),
                ms(load.percentile(50.0))
            ),
            format!("the one-table `\\copy` above: {} rows/s", thousands(one_table_rows_per_s)),
            ratio,
            TARGET_RATIO,
        ),
        load,
    )
}

fn pricing_measured(args: &BenchArgs, priced: &[Ingested], unpriced: &[Ingested]) -> Measured {
    let mean = |runs: &[Ingested]| runs.iter().map(|r| r.events_per_s).sum::<f64>() / runs.len().max(1) as f64;
    let each = |runs: &[Ingested]| runs.iter().map(|r| thousands(r.events_per_s)).collect::<Vec<_>>().join(", ");
    let (on, off) = (mean(priced), mean(unpriced));
    let ratio = on / off;
    Measured {
        title: format!(
            "ingest: the same $ai_generation load priced at ingestion vs LLMA_PRICE_EVENTS=false, runs on-off-off-on ({} senders x {})",
            args.senders, args.batch_size
        ),
        lines: vec![
            ("priced events/s (each run)".to_owned(), each(priced)),
            ("unpriced events/s (each run)".to_owned(), each(unpriced)),
            ("priced events/s / unpriced events/s".to_owned(), format!("{ratio:.3}")),
        ],
        summary: SummaryRow::ratio_at_least(
            "ingestion with each generation priced from the pinned table (issue 20), runs on-off-off-on".to_owned(),
            format!("{} events/s priced (mean of {})", thousands(on), each(priced)),
            format!("the same load with pricing off: {} events/s (mean of {})", thousands(off), each(unpriced)),
            ratio,
            PRICING_TARGET_RATIO,
        ),
        notes: Vec::new(),
        errors: unpriced.iter().map(|r| r.load.errors).sum(),
        first_error: unpriced.iter().find_map(|r| r.load.first_error.clone()),
    }
}

/// The count `sql` gives in `database`.
async fn count(setup: &Setup<'_>, database: &str, sql: &str, signals: &mut Signals) -> Result<u64> {
    Ok(psql_value_in(setup.pg, database, sql, signals).await?.parse()?)
}

/// The measurement's project, through the API as a user sets it up.
struct Api<'a> {
    client: &'a reqwest::Client,
    base_url: &'a str,
    personal_key: &'a str,
    project_id: &'a str,
}

impl Api<'_> {
    async fn post(&self, path: &str, body: Value) -> Result<Value> {
        let url = format!("{}/api/environments/{}/{path}", self.base_url, self.project_id);
        call_api(self.client, reqwest::Method::POST, &url, self.personal_key, &body).await
    }

    /// A provider key, and [`EVALUATIONS`] enabled on it, each matching every generation.
    async fn enable_evaluations(&self) -> Result<()> {
        let key = self
            .post(
                "llm_analytics/provider_keys/",
                json!({"provider": "openai", "name": "judged ingestion key", "api_key": "sk-bench-judged-0123456789"}),
            )
            .await?;
        let key_id = scalar(&key["id"]).context("the key has no id")?;
        for name in EVALUATIONS {
            self.post(
                "evaluations/",
                json!({
                    "name": name,
                    "enabled": true,
                    "evaluation_type": "llm_judge",
                    "evaluation_config": {"prompt": format!("Is the answer's {name} acceptable?")},
                    "output_type": "boolean",
                    "model_configuration": {"provider": "openai", "model": "gpt-5-mini", "provider_key_id": key_id},
                }),
            )
            .await?;
        }
        Ok(())
    }
}

/// The `seq`-th generation as an SDK sends it (~1.2 KB).
fn generation_json(seq: u64, out: &mut String) {
    write_generation(out, &format!("user-{}", seq % 5_000), QUESTION, ANSWER, seq);
}
