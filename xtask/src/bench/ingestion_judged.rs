//! ingest, second measurement: `$ai_generation` events through `POST /batch/` to a project
//! with three enabled evaluations, so that every stored generation queues its judge job
//! (one per generation, listing the three evaluations) in its batch's transaction (spec
//! section 9).
//!
//! It runs against a `serve --api-only` server on a database of its own: nothing judges
//! the queued jobs while the load runs, so what is measured is ingestion with its job
//! writes, as the issue defines it. The yardstick is the first measurement's one-table
//! `\copy` rows/s.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::ingestion::{EventWriter, ingest_load, write_generation};
use super::server::RunningServer;
use super::{
    BenchArgs, BenchProject, Measured, Setup, SummaryRow, call_api, http_client, ms, psql_value_in, serve_command,
    thousands,
};
use crate::dev::{Server, scalar};
use crate::process::{self, Interrupted, Signals};

/// The ratio ingestion events/s / one-table `\copy` rows/s we aim for.
const TARGET_RATIO: f64 = 0.5;
/// The database this measurement's server uses.
const DATABASE: &str = "bench_judged";
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

pub(super) async fn run(
    setup: &Setup<'_>,
    args: &BenchArgs,
    one_table_rows_per_s: f64,
    signals: &mut Signals,
) -> Result<Measured> {
    setup.pg.ensure_database(DATABASE)?;
    process::check_status(process::run(&mut setup.migrate(DATABASE), signals).await?, "`llm-analytics migrate`")?;
    let server = Server {
        binary: setup.server.binary.clone(),
        database_url: setup.pg.url(DATABASE),
        keys: setup.server.keys.clone(),
    };
    let BenchProject { id: project_id, token, personal_key } =
        BenchProject::create(&server, "Judged ingestion", "judged@example.com")?;

    let mut running = RunningServer::start(serve_command(&server, setup.fake_openai, &["--api-only"]), signals).await?;
    let client = http_client(args.senders)?;
    let api =
        Api { client: &client, base_url: &running.base_url, personal_key: &personal_key, project_id: &project_id };
    api.enable_evaluations().await?;

    let url = format!("{}/batch/", running.base_url);
    eprintln!(
        "xtask: ingest: POST {url}, {} senders x {} $ai_generation events, {} evaluations enabled",
        args.senders,
        args.batch_size,
        EVALUATIONS.len()
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
    let stored = count(setup, "SELECT count(*) FROM ai_events", signals).await?;
    let jobs = count(setup, "SELECT count(*) FROM jobs", signals).await?;
    let judgements =
        count(setup, "SELECT coalesce(sum(jsonb_array_length(payload -> 'evaluations')), 0) FROM jobs", signals)
            .await?;
    let expected = stored * EVALUATIONS.len() as u64;
    if jobs != stored || judgements != expected {
        bail!(
            "{stored} generations stored queued {jobs} jobs for {judgements} judgements, expected {stored} for {expected}"
        );
    }
    let events_per_s = load.per_second(load.items);
    let ratio = events_per_s / one_table_rows_per_s;
    Ok(Measured::of_load(
        format!(
            "ingest: POST /batch/, {} senders x {} $ai_generation events, {} evaluations enabled",
            args.senders,
            args.batch_size,
            EVALUATIONS.len()
        ),
        vec![
            ("server events/s (stored)".to_owned(), thousands(events_per_s)),
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
    ))
}

/// The count `sql` gives in this measurement's database.
async fn count(setup: &Setup<'_>, sql: &str, signals: &mut Signals) -> Result<u64> {
    Ok(psql_value_in(setup.pg, DATABASE, sql, signals).await?.parse()?)
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
