//! What the measurements found, and how it is printed: one table, then a Markdown
//! summary for the README.

use std::time::{Duration, Instant};

use anyhow::Result;

use super::BenchArgs;

/// What one measurement found: its lines of the table, its line of the Markdown summary,
/// and how many requests failed.
pub(super) struct Measured {
    /// The section's title in the table.
    pub(super) title: String,
    /// (metric, value) lines.
    pub(super) lines: Vec<(String, String)>,
    pub(super) summary: SummaryRow,
    /// Warnings, printed under the table and the Markdown summary.
    pub(super) notes: Vec<String>,
    pub(super) errors: u64,
    pub(super) first_error: Option<String>,
}

/// One row of the Markdown summary.
pub(super) struct SummaryRow {
    pub(super) measurement: String,
    pub(super) server: String,
    pub(super) yardstick: String,
    pub(super) ratio: String,
    /// e.g. `≥ 0.5`, and whether it was met.
    pub(super) target: String,
    pub(super) met: bool,
}

/// The bench server's peak resident set over every measurement but the burst (which has a
/// server and targets of its own).
const PEAK_RSS_TARGET_MIB: f64 = 100.0;

#[derive(Default)]
pub(super) struct Report {
    parts: Vec<Measured>,
}

/// What a read measured beside psql aims at: at most `ratio` times psql's p50, and a p50
/// under `ms`.
pub(super) struct ReadTarget {
    pub(super) ratio: f64,
    pub(super) ms: f64,
}

impl ReadTarget {
    /// The spec's target for a read beside the same SQL alone.
    pub(super) const BESIDE_PSQL: Self = Self { ratio: 2.0, ms: 50.0 };

    pub(super) fn describe(&self) -> String {
        format!("≤ {}× and < {:.0} ms", self.ratio, self.ms)
    }

    pub(super) fn met(&self, ratio: f64, p50_ms: f64) -> bool {
        ratio <= self.ratio && p50_ms < self.ms
    }
}

impl SummaryRow {
    /// A row with no yardstick: the figure alone against an absolute target.
    pub(super) fn absolute(measurement: String, server: String, target: String, met: bool) -> Self {
        Self { measurement, server, yardstick: "-".to_owned(), ratio: "-".to_owned(), target, met }
    }

    /// A row whose target is a ratio of at least `target` to the yardstick.
    pub(super) fn ratio_at_least(
        measurement: String,
        server: String,
        yardstick: String,
        ratio: f64,
        target: f64,
    ) -> Self {
        Self {
            measurement,
            server,
            yardstick,
            ratio: format!("{ratio:.2}"),
            target: format!("≥ {target}"),
            met: ratio >= target,
        }
    }
}

/// `count` things in `elapsed` as a rate: "8,621 judgements/s (100000 in 11.6 s)".
pub(super) fn rate_text(what: &str, rate: f64, count: u64, elapsed: std::time::Duration) -> String {
    format!("{} {what}/s ({count} in {:.1} s)", thousands(rate), elapsed.as_secs_f64())
}

impl Measured {
    /// The measurement of one load: its errors are the load's.
    pub(super) fn of_load(title: String, lines: Vec<(String, String)>, summary: SummaryRow, load: LoadResult) -> Self {
        Self { title, lines, summary, notes: Vec::new(), errors: load.errors, first_error: load.first_error }
    }
}

impl Report {
    pub(super) fn add(&mut self, measured: Measured) {
        self.parts.push(measured);
    }

    pub(super) fn print(&self, args: &BenchArgs, peak_rss_kib: u64) {
        let width = self.parts.iter().flat_map(|p| p.lines.iter().map(|(m, _)| m.chars().count())).max().unwrap_or(0);
        let width = width.max(34);
        println!();
        println!("llm-analytics bench: {}s measured after {}s warm-up, {} cores", args.seconds, args.warmup, cores());
        println!("  {:<width$} {:>18}", "metric", "value");
        for part in &self.parts {
            println!("  [{}]", part.title);
            for (metric, value) in &part.lines {
                println!("  {metric:<width$} {value:>18}");
            }
        }
        println!("  [server]");
        println!("  {:<width$} {:>18.1}", "peak RSS (VmHWM) over the run, MiB", peak_rss_kib as f64 / 1024.0);
        println!();
        for note in self.parts.iter().flat_map(|part| &part.notes) {
            println!("WARNING: {note}");
            println!();
        }
        println!("Markdown for the README:");
        println!();
        println!("| measurement | llm-analytics | PostgreSQL alone | ratio | target |");
        println!("|---|---|---|---|---|");
        for part in &self.parts {
            let s = &part.summary;
            let verdict = if s.met { "met" } else { "**not met**" };
            println!("| {} | {} | {} | {} | {} ({verdict}) |", s.measurement, s.server, s.yardstick, s.ratio, s.target);
        }
        let peak_mib = peak_rss_kib as f64 / 1024.0;
        let verdict = if peak_mib <= PEAK_RSS_TARGET_MIB { "met" } else { "**not met**" };
        println!(
            "| server peak RSS over the measurements above the burst | {peak_mib:.0} MiB | — | — | ≤ {PEAK_RSS_TARGET_MIB:.0} MiB ({verdict}) |"
        );
        println!();
        println!(
            "Release build, throwaway PostgreSQL (fsync off) on the same {}-core machine as the load \
             generator; server peak RSS {:.0} MiB.",
            cores(),
            peak_rss_kib as f64 / 1024.0
        );
        for note in self.parts.iter().flat_map(|part| &part.notes) {
            println!();
            println!("> **Warning:** {note}");
        }
        println!();
    }

    pub(super) fn exit_code(&self) -> Result<u8> {
        let mut code = 0;
        for part in &self.parts {
            if part.errors > 0 {
                eprintln!(
                    "xtask: {}: {} requests failed; the first: {}",
                    part.title,
                    part.errors,
                    part.first_error.as_deref().unwrap_or("unknown")
                );
                code = 1;
            }
        }
        Ok(code)
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// What a timed window of requests saw.
#[derive(Debug)]
pub(super) struct LoadResult {
    /// Successful requests.
    pub(super) ok: u64,
    /// What the successful requests carried (events, for ingestion; else = `ok`).
    pub(super) items: u64,
    pub(super) errors: u64,
    pub(super) first_error: Option<String>,
    /// Latencies of the successful requests, in microseconds, sorted.
    pub(super) latencies_us: Vec<u32>,
    pub(super) elapsed: Duration,
}

impl LoadResult {
    pub(super) fn empty(elapsed: Duration) -> Self {
        Self { ok: 0, items: 0, errors: 0, first_error: None, latencies_us: Vec::new(), elapsed }
    }

    /// Counts one request that finished inside the window, `started` to `finished`.
    pub(super) fn record(&mut self, outcome: Result<u64, String>, started: Instant, finished: Instant) {
        match outcome {
            Ok(items) => {
                self.ok += 1;
                self.items += items;
                let us = (finished - started).as_micros();
                self.latencies_us.push(u32::try_from(us).unwrap_or(u32::MAX));
            }
            Err(error) => {
                self.errors += 1;
                self.first_error.get_or_insert(error);
            }
        }
    }

    pub(super) fn merge(&mut self, part: LoadResult) {
        self.ok += part.ok;
        self.items += part.items;
        self.errors += part.errors;
        if self.first_error.is_none() {
            self.first_error = part.first_error;
        }
        self.latencies_us.extend(part.latencies_us);
        self.latencies_us.sort_unstable();
    }

    pub(super) fn per_second(&self, count: u64) -> f64 {
        count as f64 / self.elapsed.as_secs_f64()
    }

    /// The nearest-rank percentile `p` (0..=100) of the latencies.
    pub(super) fn percentile(&self, p: f64) -> Option<Duration> {
        let n = self.latencies_us.len();
        if n == 0 {
            return None;
        }
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        Some(Duration::from_micros(u64::from(self.latencies_us[rank.clamp(1, n) - 1])))
    }

    pub(super) fn mean(&self) -> Option<Duration> {
        let n = self.latencies_us.len() as u64;
        let sum: u64 = self.latencies_us.iter().map(|&us| u64::from(us)).sum();
        (n > 0).then(|| Duration::from_micros(sum / n))
    }
}

/// `12.34 ms`, or `-`.
pub(super) fn ms(duration: Option<Duration>) -> String {
    duration.map_or_else(|| "-".to_owned(), |d| format!("{:.2} ms", d.as_secs_f64() * 1e3))
}

/// An integer with thin separators: `1,234,567`.
pub(super) fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if value < 0.0 && digits != "0" { format!("-{out}") } else { out }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{LoadResult, thousands};

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let load = LoadResult { latencies_us: (1..=100).collect(), ..LoadResult::empty(Duration::from_secs(1)) };
        assert_eq!(load.percentile(50.0), Some(Duration::from_micros(50)));
        assert_eq!(load.percentile(99.0), Some(Duration::from_micros(99)));
        assert_eq!(load.percentile(100.0), Some(Duration::from_micros(100)));
        assert_eq!(load.mean(), Some(Duration::from_micros(50)));
        assert_eq!(LoadResult::empty(Duration::from_secs(1)).percentile(50.0), None);
    }

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
        assert_eq!(thousands(-12_345.0), "-12,345");
    }
}
