//! ingest: `$ai_evaluation` events through `POST /batch/` (batches of `--batch-size` from
//! `--senders` concurrent senders, every event a fresh uuid v7), beside `COPY` of the same
//! number of equivalent rows into the same tables by as many parallel `psql` processes.
//!
//! The rows are what the adapter writes (`crates/adapters-postgres/src/ai_event_store.rs`,
//! `INSERT_BATCH`): an `ai_event_ids` claim (project, uuid, timestamp) and an `ai_events`
//! row whose id columns are the properties `$ai_trace_id`, `$ai_evaluation_id`,
//! `$ai_target_event_id`, `$ai_experiment_id` and `$ai_experiment_item_id`. Each COPY
//! process loads both files in one transaction, so both sides pay for the same rows and
//! the same seven indexes; only the `ON CONFLICT` check is the adapter's alone. That is
//! the second line; the target is against what a user would compare with: one `psql \copy`
//! of the same rows into one table ([`ONE_TABLE`]).

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::load::{closed_loop, ok_body};
use super::{
    BenchArgs, LoadResult, Measured, SERVER_DATABASE, Setup, SummaryRow, checked_output, http_client, ms, psql_command,
    psql_value, run_parallel, thousands,
};
use crate::process::{Interrupted, Signals};

/// The ratio ingestion events/s / COPY rows/s we aim for.
const TARGET_RATIO: f64 = 0.6;
/// The columns the adapter's `INSERT_BATCH` fills (`inserted_at` takes its default).
const EVENT_COLUMNS: &str = "project_id, uuid, event, distinct_id, timestamp, trace_id, evaluation_id, \
                             target_event_id, experiment_id, experiment_item_id, properties";
const ID_COLUMNS: &str = "project_id, uuid, timestamp";
/// Distinct users, items and metrics the events spread over.
const USERS: u64 = 5_000;
const ITEMS: u64 = 2_000;
const METRICS: [&str; 3] = ["helpfulness", "faithfulness", "toxicity"];
/// Judge reasonings of about 200 characters (plain ASCII: no JSON or COPY escaping needed,
/// but both are applied anyway).
const REASONINGS: [&str; 4] = [
    "The answer addresses the user's question directly, cites the retrieved policy document, and \
     stays within the facts of the context; the tone is polite and the steps are in the right order.",
    "The response invents a refund deadline that appears nowhere in the provided context, so it is \
     not grounded; the rest of the answer is relevant but the fabricated detail makes it fail the check.",
    "No harmful, hateful or unsafe content: the assistant declines the off-topic request politely and \
     redirects to the supported workflow, which matches the evaluation criteria for a passing result.",
    "The summary covers the three key points of the source text, keeps the numbers exact and omits \
     nothing material; it is slightly longer than requested but that does not affect correctness here.",
];

/// Writes the `seq`-th event of a load, as a batch carries it, to the end of the string.
pub(super) type EventWriter = Arc<dyn Fn(u64, &mut String) + Send + Sync>;

/// The `$ai_evaluation` measurement, then the `$ai_generation` one against its `\copy`.
pub(super) async fn run(setup: &Setup<'_>, args: &BenchArgs, signals: &mut Signals) -> Result<Vec<Measured>> {
    let (evaluations, one_table_rows_per_s) = evaluation_events(setup, args, signals).await?;
    let mut measured = vec![evaluations];
    measured.extend(super::ingestion_judged::run(setup, args, one_table_rows_per_s, signals).await?);
    Ok(measured)
}

/// The `$ai_evaluation` measurement, and the one-table `\copy` rows/s it measured.
async fn evaluation_events(setup: &Setup<'_>, args: &BenchArgs, signals: &mut Signals) -> Result<(Measured, f64)> {
    let catalog = Arc::new(Catalog::new(setup.project_id)?);
    let url = format!("{}/batch/", setup.base_url);
    eprintln!(
        "xtask: ingest: POST {url}, {} senders x {} events per batch, {}s warm-up + {}s measured",
        args.senders, args.batch_size, args.warmup, args.seconds
    );
    psql_value(setup.pg, "TRUNCATE ai_events, ai_event_ids", signals).await?;
    let client = http_client(args.senders)?;
    let write_event: EventWriter = {
        let catalog = catalog.clone();
        Arc::new(move |seq, out| catalog.event(seq).write_json(out))
    };
    let load = tokio::select! {
        load = ingest_load(&client, &url, setup.project_token, &write_event, 1_200, args) => load?,
        sig = signals.recv() => return Err(Interrupted(sig).into()),
    };
    if load.ok == 0 {
        bail!("no batch was accepted{}", load.first_error.map(|e| format!(" (first error: {e})")).unwrap_or_default());
    }
    let events_per_s = load.per_second(load.items);
    let stored: u64 = psql_value(setup.pg, "SELECT count(*) FROM ai_events", signals).await?.parse()?;
    let claimed: u64 = psql_value(setup.pg, "SELECT count(*) FROM ai_event_ids", signals).await?.parse()?;
    if stored != claimed || stored < load.items {
        bail!("after ingestion: {stored} events and {claimed} ids stored, but {} events were accepted", load.items);
    }

    // COPY the same number of rows onto the same starting point: the rows that were in the
    // table when the measured window began (warm-up and in-flight batches) first, unmeasured.
    let measured_rows = load.items;
    let preload_rows = stored - measured_rows;
    let processes = args.senders;
    eprintln!("xtask: ingest: writing COPY files ({preload_rows} unmeasured + {measured_rows} measured rows)");
    let preload = write_copy_files(setup.dir, "preload", &catalog, preload_rows, processes)?;
    let measured = write_copy_files(setup.dir, "measured", &catalog, measured_rows, processes)?;
    psql_value(setup.pg, "TRUNCATE ai_events, ai_event_ids", signals).await?;
    psql_value(setup.pg, "CHECKPOINT", signals).await?;
    if preload_rows > 0 {
        eprintln!("xtask: ingest: COPY warm-up, {preload_rows} rows from {processes} psql processes");
        copy(setup, &preload, signals).await?;
    }
    eprintln!("xtask: ingest: COPY, {measured_rows} rows from {processes} psql processes");
    let started = Instant::now();
    copy(setup, &measured, signals).await?;
    let copy_elapsed = started.elapsed();
    let copied: u64 = psql_value(setup.pg, "SELECT count(*) FROM ai_events", signals).await?.parse()?;
    if copied != stored {
        bail!("COPY left {copied} rows in ai_events, expected {stored}");
    }
    let one_table_elapsed = copy_into_one_table(setup, &measured, signals).await?;
    for file in preload.iter().chain(&measured) {
        let _ = std::fs::remove_file(&file.ids);
        let _ = std::fs::remove_file(&file.events);
    }
    let copy_rows_per_s = measured_rows as f64 / copy_elapsed.as_secs_f64();
    let copy_ratio = events_per_s / copy_rows_per_s;
    let one_table_rows_per_s = measured_rows as f64 / one_table_elapsed.as_secs_f64();
    let ratio = events_per_s / one_table_rows_per_s;

    let measured = Measured::of_load(
        format!("ingest: POST /batch/, {} senders x {} $ai_evaluation events", args.senders, args.batch_size),
        vec![
            ("server events/s (stored)".to_owned(), thousands(events_per_s)),
            ("server batches/s".to_owned(), format!("{:.1}", load.per_second(load.ok))),
            ("server batch p50 latency".to_owned(), ms(load.percentile(50.0))),
            ("server batch p99 latency".to_owned(), ms(load.percentile(99.0))),
            ("server errors (non-200)".to_owned(), load.errors.to_string()),
            ("events in the measured window".to_owned(), thousands(measured_rows as f64)),
            ("one psql \\copy rows/s (one table, 3 indexes)".to_owned(), thousands(one_table_rows_per_s)),
            ("server events/s / one-table \\copy rows/s".to_owned(), format!("{ratio:.3}")),
            (format!("COPY rows/s ({processes} psql, the service's two tables)"), thousands(copy_rows_per_s)),
            ("COPY wall time".to_owned(), format!("{:.2} s", copy_elapsed.as_secs_f64())),
            ("server events/s / COPY rows/s".to_owned(), format!("{copy_ratio:.3}")),
        ],
        SummaryRow::ratio_at_least(
            format!(
                "ingestion, `$ai_evaluation` via `POST /batch/`, {} senders × {} events",
                args.senders, args.batch_size
            ),
            format!("{} events/s (batch p50 {})", thousands(events_per_s), ms(load.percentile(50.0))),
            format!(
                "one `psql \\copy` into one table {} rows/s (`COPY` × {processes} into the service's tables: {} rows/s, ratio {copy_ratio:.2})",
                thousands(one_table_rows_per_s),
                thousands(copy_rows_per_s)
            ),
            ratio,
            TARGET_RATIO,
        ),
        load,
    );
    Ok((measured, one_table_rows_per_s))
}

/// The fixed parts of the generated events: the project, the evaluations and experiments
/// they belong to (random ids, so runs do not collide), the reasonings as JSON strings.
struct Catalog {
    project_id: String,
    evaluations: Vec<(String, &'static str)>,
    experiments: Vec<(String, String)>,
    reasonings: Vec<String>,
}

impl Catalog {
    fn new(project_id: &str) -> Result<Self> {
        let now = unix_millis();
        Ok(Self {
            project_id: project_id.to_owned(),
            evaluations: METRICS.iter().map(|&name| (uuid_v7(now, rand::random()), name)).collect(),
            experiments: (0..20).map(|n| (uuid_v7(now, rand::random()), format!("prompt v{n} vs baseline"))).collect(),
            reasonings: REASONINGS.iter().map(serde_json::to_string).collect::<Result<_, _>>()?,
        })
    }

    /// The `seq`-th event, happening now.
    fn event(&self, seq: u64) -> Event<'_> {
        let now = unix_millis();
        let metric = (seq % METRICS.len() as u64) as usize;
        let (evaluation_id, metric_name) = &self.evaluations[metric];
        let (experiment_id, experiment_name) = &self.experiments[((seq / 3 / ITEMS) % 20) as usize];
        let mut properties = String::with_capacity(1024);
        let _ = write!(
            properties,
            "{{\"$ai_evaluation_id\":\"{evaluation_id}\",\"$ai_evaluation_name\":\"{metric_name}\",\
             \"$ai_target_event_id\":\"{target}\",\"$ai_trace_id\":\"{trace}\",\
             \"$ai_evaluation_result\":{result},\"$ai_evaluation_applicable\":true,\
             \"$ai_evaluation_reasoning\":{reasoning},\"$ai_evaluation_key_type\":\"provider_key\",\
             \"$ai_model\":\"gpt-4.1-mini\",\"$ai_provider\":\"openai\",\
             \"$ai_experiment_id\":\"{experiment_id}\",\"$ai_experiment_name\":\"{experiment_name}\",\
             \"$ai_experiment_item_id\":\"item-{item:05}\",\"$ai_metric_name\":\"{metric_name}\",\
             \"$ai_metric_version\":\"1\",\"$ai_score\":{score},\"$ai_result_type\":\"boolean\",\
             \"$lib\":\"posthog-python\",\"$lib_version\":\"6.7.0\"}}",
            target = uuid_v7(now, rand::random()),
            trace = uuid_v7(now, rand::random()),
            result = seq % 4 != 1,
            reasoning = self.reasonings[(seq % self.reasonings.len() as u64) as usize],
            item = (seq / 3) % ITEMS,
            score = if seq % 4 == 1 { 0 } else { 1 },
        );
        Event {
            uuid: uuid_v7(now, rand::random()),
            distinct_id: format!("user-{}", seq % USERS),
            timestamp: iso8601_millis(now),
            properties,
            evaluation_id,
            experiment_id,
            item: (seq / 3) % ITEMS,
        }
    }
}

/// One generated `$ai_evaluation` event.
struct Event<'a> {
    uuid: String,
    distinct_id: String,
    timestamp: String,
    /// The properties as a JSON object.
    properties: String,
    evaluation_id: &'a str,
    experiment_id: &'a str,
    item: u64,
}

impl Event<'_> {
    /// A property's value as written in `properties` (`$ai_trace_id` and
    /// `$ai_target_event_id` are only there).
    fn property(&self, key: &str) -> &str {
        let needle = format!("\"{key}\":\"");
        let start = self.properties.find(&needle).map_or(0, |at| at + needle.len());
        let end = self.properties[start..].find('"').map_or(start, |len| start + len);
        &self.properties[start..end]
    }

    /// The event as the SDKs put it in a batch.
    fn write_json(&self, out: &mut String) {
        let _ = write!(
            out,
            "{{\"event\":\"$ai_evaluation\",\"distinct_id\":\"{}\",\"uuid\":\"{}\",\"timestamp\":\"{}\",\"properties\":{}}}",
            self.distinct_id, self.uuid, self.timestamp, self.properties
        );
    }

    /// The `ai_events` row the adapter writes, in COPY's text format ([`EVENT_COLUMNS`]).
    fn write_event_row(&self, project_id: &str, out: &mut impl std::io::Write) -> std::io::Result<()> {
        writeln!(
            out,
            "{project_id}\t{}\t$ai_evaluation\t{}\t{}\t{}\t{}\t{}\t{}\titem-{:05}\t{}",
            self.uuid,
            copy_text_escape(&self.distinct_id),
            self.timestamp,
            self.property("$ai_trace_id"),
            self.evaluation_id,
            self.property("$ai_target_event_id"),
            self.experiment_id,
            self.item,
            copy_text_escape(&self.properties),
        )
    }

    /// The `ai_event_ids` claim the adapter writes ([`ID_COLUMNS`]).
    fn write_id_row(&self, project_id: &str, out: &mut impl std::io::Write) -> std::io::Result<()> {
        writeln!(out, "{project_id}\t{}\t{}", self.uuid, self.timestamp)
    }
}

/// A `$ai_generation` event as an SDK sends it, happening now: `input` as the user turn,
/// `output` as the answer (both plain text needing no JSON escaping), token counts and
/// latency varied by `n`.
pub(super) fn write_generation(out: &mut String, distinct_id: &str, input: &str, output: &str, n: u64) {
    let now = unix_millis();
    let _ = write!(
        out,
        "{{\"event\":\"$ai_generation\",\"distinct_id\":\"{distinct_id}\",\"uuid\":\"{}\",\"timestamp\":\"{}\",\
         \"properties\":{{\"$ai_trace_id\":\"{}\",\"$ai_model\":\"gpt-4.1-mini\",\"$ai_provider\":\"openai\",\
         \"$ai_input_tokens\":{},\"$ai_output_tokens\":{},\"$ai_latency\":0.{:03},\
         \"$ai_input\":[{{\"role\":\"user\",\"content\":\"{input}\"}}],\
         \"$ai_output_choices\":[{{\"role\":\"assistant\",\"content\":\"{output}\"}}],\
         \"$lib\":\"posthog-python\",\"$lib_version\":\"6.7.0\"}}}}",
        uuid_v7(now, rand::random()),
        iso8601_millis(now),
        uuid_v7(now, rand::random()),
        100 + n % 900,
        10 + n % 90,
        n % 1000,
    );
}

/// `senders` workers, each posting batches of `write_event`'s events (of about
/// `event_bytes` each) back to back (the shared closed loop); counts the batches (and
/// their events) that finish inside the measured window.
pub(super) async fn ingest_load(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    write_event: &EventWriter,
    event_bytes: usize,
    args: &BenchArgs,
) -> Result<LoadResult> {
    let (client, url, token, write_event): (_, Arc<str>, Arc<str>, _) =
        (client.clone(), url.into(), token.into(), write_event.clone());
    let batch_size = args.batch_size;
    let capacity = usize::try_from(batch_size).unwrap_or(0) * event_bytes + 256;
    closed_loop(args.senders, args, move |sender, iteration| {
        let mut body = String::with_capacity(capacity);
        let _ = write!(body, "{{\"api_key\":\"{token}\",\"sent_at\":\"{}\",\"batch\":[", iso8601_millis(unix_millis()));
        let first = sender * 1_000_000_000 + iteration * batch_size;
        for n in 0..batch_size {
            if n > 0 {
                body.push(',');
            }
            write_event(first + n, &mut body);
        }
        body.push_str("]}");
        let sent = client.post(&*url).header("content-type", "application/json").body(body).send();
        Some(async move {
            let answer = ok_body(sent.await).await?;
            match serde_json::from_slice::<Value>(&answer) {
                Ok(answer) if answer["status"] == 1 => Ok(batch_size),
                _ => Err(format!("200: {}", String::from_utf8_lossy(&answer))),
            }
        })
    })
    .await
    .map(|load| load.result)
}

/// The two files one COPY process loads.
struct CopyFiles {
    ids: PathBuf,
    events: PathBuf,
}

/// Writes `rows` fresh events as `processes` pairs of COPY files (ids, events) in `dir`.
fn write_copy_files(dir: &Path, name: &str, catalog: &Catalog, rows: u64, processes: u64) -> Result<Vec<CopyFiles>> {
    let mut files = Vec::new();
    let mut seq = 9_000_000_000;
    for process in 0..processes {
        let share = rows / processes + u64::from(process < rows % processes);
        let pair = CopyFiles {
            ids: dir.join(format!("{name}-{process}-ids.tsv")),
            events: dir.join(format!("{name}-{process}-events.tsv")),
        };
        let open = |path: &Path| -> Result<BufWriter<File>> {
            Ok(BufWriter::with_capacity(
                1 << 20,
                File::create(path).with_context(|| format!("creating {}", path.display()))?,
            ))
        };
        let (mut ids, mut events) = (open(&pair.ids)?, open(&pair.events)?);
        for _ in 0..share {
            let event = catalog.event(seq);
            seq += 1;
            event.write_id_row(&catalog.project_id, &mut ids)?;
            event.write_event_row(&catalog.project_id, &mut events)?;
        }
        ids.flush()?;
        events.flush()?;
        files.push(pair);
    }
    Ok(files)
}

/// Loads every pair of files at once, one `psql` per pair, each pair in one transaction.
async fn copy(setup: &Setup<'_>, files: &[CopyFiles], signals: &mut Signals) -> Result<()> {
    let commands = files
        .iter()
        .map(|pair| {
            let mut cmd = psql_command(setup.pg, SERVER_DATABASE);
            cmd.arg("-1")
                .arg("-c")
                .arg(format!("\\copy ai_event_ids({ID_COLUMNS}) FROM '{}'", pair.ids.display()))
                .arg("-c")
                .arg(format!("\\copy ai_events({EVENT_COLUMNS}) FROM '{}'", pair.events.display()));
            cmd
        })
        .collect();
    for out in run_parallel(commands, signals).await? {
        checked_output(&out, "`psql -c \\copy`")?;
    }
    Ok(())
}

/// The table a user would compare ingestion with: the same rows in one table with a uuid
/// primary key, JSONB properties, an index on (project, event, timestamp) and one on the
/// evaluation id.
const ONE_TABLE: &str = "DROP TABLE IF EXISTS bench_one_table; \
    CREATE TABLE bench_one_table (project_id bigint NOT NULL, uuid uuid PRIMARY KEY, event text NOT NULL, \
    distinct_id text NOT NULL, timestamp timestamptz NOT NULL, trace_id text, evaluation_id text, \
    target_event_id text, experiment_id text, experiment_item_id text, properties jsonb NOT NULL); \
    CREATE INDEX ON bench_one_table (project_id, event, timestamp DESC); \
    CREATE INDEX ON bench_one_table (evaluation_id)";

/// Times one `psql \copy` of the measured rows (the event files, joined) into
/// [`ONE_TABLE`], and drops the table after.
async fn copy_into_one_table(setup: &Setup<'_>, files: &[CopyFiles], signals: &mut Signals) -> Result<Duration> {
    let joined = setup.dir.join("one-table-events.tsv");
    {
        let mut out = BufWriter::with_capacity(1 << 20, File::create(&joined).context("creating the one-table file")?);
        for pair in files {
            std::io::copy(&mut File::open(&pair.events)?, &mut out)?;
        }
        out.flush()?;
    }
    let mut create = psql_command(setup.pg, SERVER_DATABASE);
    create.arg("-c").arg(ONE_TABLE);
    checked_output(&crate::process::output(&mut create, signals).await?, "creating the one-table yardstick")?;
    psql_value(setup.pg, "CHECKPOINT", signals).await?;
    eprintln!("xtask: ingest: one psql \\copy into one table");
    let mut copy = psql_command(setup.pg, SERVER_DATABASE);
    copy.arg("-c").arg(format!("\\copy bench_one_table({EVENT_COLUMNS}) FROM '{}'", joined.display()));
    let started = Instant::now();
    let out = crate::process::output(&mut copy, signals).await?;
    let elapsed = started.elapsed();
    checked_output(&out, "`psql -c \\copy` into one table")?;
    let _ = std::fs::remove_file(&joined);
    psql_value(setup.pg, "DROP TABLE bench_one_table", signals).await?;
    Ok(elapsed)
}

/// `text` as a field of COPY's text format: backslash, tab, newline and carriage return
/// escaped.
fn copy_text_escape(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains(['\\', '\t', '\n', '\r']) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.into()
}

pub(super) fn unix_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A UUID v7 (RFC 9562): 48 bits of Unix milliseconds, the version, 74 bits of `random`,
/// the variant; as lowercase hyphenated text.
pub(super) fn uuid_v7(unix_ms: u64, random: u128) -> String {
    let mut value = (u128::from(unix_ms & 0xFFFF_FFFF_FFFF) << 80) | (random & ((1 << 80) - 1));
    value = (value & !(0xF << 76)) | (0x7 << 76); // version 7
    value = (value & !(0x3 << 62)) | (0x2 << 62); // variant 10
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        value >> 96,
        (value >> 80) & 0xFFFF,
        (value >> 64) & 0xFFFF,
        (value >> 48) & 0xFFFF,
        value & 0xFFFF_FFFF_FFFF
    )
}

/// `unix_ms` as RFC 3339 UTC with milliseconds: `2026-01-02T03:04:05.678Z`.
pub(super) fn iso8601_millis(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let (year, month, day) = civil_from_days(i64::try_from(secs / 86_400).unwrap_or(0));
    let rem = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        unix_ms % 1000
    )
}

/// The proleptic Gregorian date of day `days` since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    #[test]
    fn iso8601_formats_utc_with_milliseconds() {
        assert_eq!(iso8601_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601_millis(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(iso8601_millis(1_709_164_800_000), "2024-02-29T00:00:00.000Z");
        assert_eq!(iso8601_millis(1_735_689_599_999), "2024-12-31T23:59:59.999Z");
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn uuid_v7_has_its_time_version_and_variant() {
        let uuid = uuid_v7(0x0123_4567_89ab, u128::MAX);
        assert_eq!(uuid, "01234567-89ab-7fff-bfff-ffffffffffff");
        let uuid = uuid_v7(0x0123_4567_89ab, 0);
        assert_eq!(uuid, "01234567-89ab-7000-8000-000000000000");
        assert_eq!(uuid_v7(unix_millis(), rand::random()).len(), 36);
    }

    #[test]
    fn copy_text_escapes_backslashes_and_control_characters() {
        assert_eq!(copy_text_escape("plain"), "plain");
        assert_eq!(copy_text_escape(r#"{"a":"x\"y"}"#), r#"{"a":"x\\"y"}"#);
        assert_eq!(copy_text_escape("a\tb\nc\rd"), "a\\tb\\nc\\rd");
    }

    #[test]
    fn an_event_is_valid_json_and_its_row_carries_the_extracted_ids() {
        let catalog = Catalog::new("7").unwrap();
        let event = catalog.event(5);
        let mut json = String::new();
        event.write_json(&mut json);
        let parsed: Value = serde_json::from_str(&json).unwrap();
        let properties = &parsed["properties"];
        assert_eq!(parsed["event"], "$ai_evaluation");
        let reasoning = properties["$ai_evaluation_reasoning"].as_str().unwrap();
        assert!((180..=220).contains(&reasoning.len()), "{}", reasoning.len());

        let mut row = Vec::new();
        event.write_event_row("7", &mut row).unwrap();
        let row = String::from_utf8(row).unwrap();
        let fields: Vec<&str> = row.trim_end_matches('\n').split('\t').collect();
        assert_eq!(fields.len(), EVENT_COLUMNS.split(',').count());
        assert_eq!(fields[0], "7");
        assert_eq!(fields[1], parsed["uuid"]);
        assert_eq!(fields[5], properties["$ai_trace_id"]);
        assert_eq!(fields[6], properties["$ai_evaluation_id"]);
        assert_eq!(fields[7], properties["$ai_target_event_id"]);
        assert_eq!(fields[8], properties["$ai_experiment_id"]);
        assert_eq!(fields[9], properties["$ai_experiment_item_id"]);
        let stored: Value = serde_json::from_str(fields[10]).unwrap();
        assert_eq!(&stored, properties);

        let mut id = Vec::new();
        event.write_id_row("7", &mut id).unwrap();
        assert_eq!(String::from_utf8(id).unwrap(), format!("7\t{}\t{}\n", event.uuid, event.timestamp));
    }

    #[test]
    fn reasonings_are_about_two_hundred_characters() {
        for reasoning in REASONINGS {
            assert!((180..=220).contains(&reasoning.len()), "{}: {reasoning}", reasoning.len());
        }
    }
}
