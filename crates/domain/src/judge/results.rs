//! `evaluation_runs/` listing and `evaluation_results/` (spec section 9): queries,
//! validation and the arithmetic on the counts the store returns.

use crate::invalid::{FieldError, Rule};
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc};

use crate::{EvaluationId, PageRequest};

/// The most `breakdown` values listed; the rest become `$other`.
pub const MAX_BREAKDOWN_VALUES: i64 = 25;
/// The value the rest are merged into.
pub const OTHER_VALUE: &str = "$other";
/// The most trend buckets a request may ask for.
pub const MAX_BUCKETS: i64 = 1_000;
/// The longest property name accepted as `breakdown`.
pub const MAX_BREAKDOWN_CHARS: usize = 200;
/// The period when none is given.
pub const DEFAULT_DAYS: i64 = 7;

/// `GET evaluation_runs/` filters.
#[derive(Debug, Clone, PartialEq)]
pub struct RunsQuery {
    pub evaluation: Option<EvaluationId>,
    pub generation: Option<String>,
    pub page: PageRequest,
}

/// One stored judgement.
#[derive(Debug, Clone, PartialEq)]
pub struct JudgedRun {
    pub id: uuid::Uuid,
    pub evaluation_id: Option<String>,
    pub evaluation_name: Option<String>,
    pub generation_id: Option<String>,
    pub trace_id: Option<String>,
    pub result: Option<bool>,
    pub applicable: Option<bool>,
    pub reasoning: Option<String>,
    pub key_type: Option<String>,
    pub key_id: Option<String>,
    pub manual: bool,
    pub timestamp: DateTime<Utc>,
}

/// Trend bucket width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Hour,
    Day,
    Week,
}

impl Interval {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw.trim() {
            "hour" => Some(Self::Hour),
            "day" => Some(Self::Day),
            "week" => Some(Self::Week),
            _ => None,
        }
    }

    /// PostgreSQL's `date_trunc` unit (its weeks start on Monday).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hour => "hour",
            Self::Day => "day",
            Self::Week => "week",
        }
    }

    /// The start of the bucket holding `instant` (UTC; weeks start on Monday).
    pub fn bucket_of(self, instant: DateTime<Utc>) -> DateTime<Utc> {
        let date = instant.date_naive();
        let start = match self {
            Self::Hour => return super::hour_of(instant),
            Self::Day => date,
            Self::Week => date - Duration::days(i64::from(date.weekday().num_days_from_monday())),
        };
        Utc.from_utc_datetime(&start.and_time(NaiveTime::MIN))
    }

    fn width(self) -> Duration {
        match self {
            Self::Hour => Duration::hours(1),
            Self::Day => Duration::days(1),
            Self::Week => Duration::weeks(1),
        }
    }

    /// How many buckets [`from`, `to`) touches.
    pub fn buckets_between(self, from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
        let first = self.bucket_of(from);
        let span = to - first;
        let width = self.width();
        (span.num_seconds() + width.num_seconds() - 1) / width.num_seconds()
    }
}

/// The client's `evaluation_results/` query string.
#[derive(Debug, Clone, Default)]
pub struct ResultsInput {
    pub evaluation_id: Option<String>,
    pub date_from: Option<String>,
    pub date_to: Option<String>,
    pub breakdown: Option<String>,
    pub interval: Option<String>,
    /// `true`: also sum what the judged generations cost.
    pub include_cost: Option<String>,
}

/// A validated results query.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultsQuery {
    pub evaluation: EvaluationId,
    pub date_from: DateTime<Utc>,
    pub date_to: DateTime<Utc>,
    pub breakdown: Option<String>,
    pub interval: Interval,
    /// Sum the judged generations' `$ai_total_cost_usd` per group.
    pub include_cost: bool,
}

/// What the judged generations of one group cost: a sum in nano-dollars (exact when
/// added up; a token's price is far above a nano-dollar) and how many runs had a cost.
/// Results of trace and session evaluations carry none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupCost {
    pub nano_usd: u64,
    pub costed_runs: u64,
}

impl GroupCost {
    /// The sum in US dollars.
    pub fn usd(&self) -> f64 {
        self.nano_usd as f64 / 1e9
    }
}

/// Counts of one group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResultCounts {
    pub pass: u64,
    pub fail: u64,
    pub na: u64,
    /// Zero unless the query asked for costs.
    pub cost: GroupCost,
}

impl ResultCounts {
    pub fn runs(&self) -> u64 {
        self.pass + self.fail + self.na
    }

    /// `pass / (pass + fail) * 100`, 2 decimals, 0 when nothing applies.
    pub fn pass_rate(&self) -> f64 {
        let applicable = self.pass + self.fail;
        if applicable == 0 {
            return 0.0;
        }
        (self.pass as f64 * 10_000.0 / applicable as f64).round() / 100.0
    }

    fn add(&mut self, other: &ResultCounts) {
        self.pass += other.pass;
        self.fail += other.fail;
        self.na += other.na;
        self.cost.nano_usd += other.cost.nano_usd;
        self.cost.costed_runs += other.cost.costed_runs;
    }
}

/// One row the store returns: a bucket × value group.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultRow {
    pub bucket: DateTime<Utc>,
    pub value: Option<String>,
    pub counts: ResultCounts,
}

/// The answer of `evaluation_results/`.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultsReport {
    pub query: ResultsQuery,
    pub totals: ResultCounts,
    pub skipped_by_cap: u64,
    pub breakdown_values: Vec<(Option<String>, ResultCounts)>,
    pub trend: Vec<ResultRow>,
}

impl ResultsReport {
    /// Totals, the breakdown list (runs descending, then value; `$other` where the store
    /// put it) and the trend (bucket, then the breakdown order) from the store's rows.
    pub fn from_rows(query: ResultsQuery, mut rows: Vec<ResultRow>, skipped_by_cap: u64) -> Self {
        let mut totals = ResultCounts::default();
        let mut values: Vec<(Option<String>, ResultCounts)> = Vec::new();
        for row in &rows {
            totals.add(&row.counts);
            if query.breakdown.is_some() {
                match values.iter_mut().find(|(value, _)| *value == row.value) {
                    Some((_, counts)) => counts.add(&row.counts),
                    None => values.push((row.value.clone(), row.counts)),
                }
            }
        }
        values.sort_by(|(a_value, a), (b_value, b)| {
            let other = |v: &Option<String>| v.as_deref() == Some(OTHER_VALUE);
            other(a_value).cmp(&other(b_value)).then(b.runs().cmp(&a.runs())).then_with(|| match (a_value, b_value) {
                (Some(a), Some(b)) => a.cmp(b),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            })
        });
        let rank = |value: &Option<String>| values.iter().position(|(v, _)| v == value).unwrap_or(usize::MAX);
        rows.sort_by(|a, b| a.bucket.cmp(&b.bucket).then(rank(&a.value).cmp(&rank(&b.value))));
        Self { query, totals, skipped_by_cap, breakdown_values: values, trend: rows }
    }
}

/// An ISO 8601 date (midnight UTC) or date-time.
pub fn parse_instant(raw: &str) -> Option<DateTime<Utc>> {
    let raw = raw.trim();
    if let Ok(date) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        return Some(Utc.from_utc_datetime(&date.and_time(NaiveTime::MIN)));
    }
    crate::ingestion::parse_iso8601(raw)
}

fn invalid(field: &'static str, rule: Rule) -> FieldError {
    FieldError::new(field, rule)
}

/// Validates `evaluation_results/`'s query (defaults: the last 7 days, by day).
pub fn parse_results_query(input: ResultsInput, now: DateTime<Utc>) -> Result<ResultsQuery, FieldError> {
    let evaluation = match input.evaluation_id.as_deref().map(str::trim).filter(|raw| !raw.is_empty()) {
        None => return Err(invalid("evaluation_id", Rule::Required)),
        Some(raw) => raw.parse::<EvaluationId>().map_err(|_| invalid("evaluation_id", Rule::NotAUuid))?,
    };
    let instant = |raw: Option<&str>, field: &'static str| -> Result<Option<DateTime<Utc>>, FieldError> {
        match raw.map(str::trim).filter(|raw| !raw.is_empty()) {
            None => Ok(None),
            Some(raw) => parse_instant(raw).map(Some).ok_or_else(|| invalid(field, Rule::NotADateOrDateTime)),
        }
    };
    let date_to = instant(input.date_to.as_deref(), "date_to")?.unwrap_or(now);
    let date_from =
        instant(input.date_from.as_deref(), "date_from")?.unwrap_or(date_to - chrono::Duration::days(DEFAULT_DAYS));
    if date_from >= date_to {
        return Err(invalid("date_from", Rule::NotBeforeDateTo));
    }
    let breakdown = match input.breakdown.as_deref().map(str::trim).filter(|raw| !raw.is_empty()) {
        None => None,
        Some(raw) if raw.chars().count() > MAX_BREAKDOWN_CHARS => {
            return Err(invalid("breakdown", Rule::TooLong { max: MAX_BREAKDOWN_CHARS }));
        }
        Some(raw) => Some(raw.to_owned()),
    };
    let interval = match input.interval.as_deref().map(str::trim).filter(|raw| !raw.is_empty()) {
        None => Interval::Day,
        Some(raw) => Interval::parse(raw).ok_or_else(|| {
            invalid("interval", Rule::NotAChoice { given: raw.to_owned(), choices: "hour, day, week".to_owned() })
        })?,
    };
    if interval.buckets_between(date_from, date_to) > MAX_BUCKETS {
        return Err(invalid("interval", Rule::TooManyBuckets));
    }
    let include_cost = match input.include_cost.as_deref().map(str::trim).filter(|raw| !raw.is_empty()) {
        None => false,
        Some(raw) => crate::invalid::parse_flag(raw).ok_or_else(|| invalid("include_cost", Rule::NotABoolean))?,
    };
    Ok(ResultsQuery { evaluation, date_from, date_to, breakdown, interval, include_cost })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(raw: &str) -> DateTime<Utc> {
        parse_instant(raw).unwrap()
    }

    #[test]
    fn pass_rate_has_two_decimals_and_ignores_na() {
        assert_eq!(ResultCounts { pass: 2, fail: 1, na: 5, ..Default::default() }.pass_rate(), 66.67);
        assert_eq!(ResultCounts { pass: 0, fail: 0, na: 3, ..Default::default() }.pass_rate(), 0.0);
        assert_eq!(ResultCounts { pass: 1, fail: 0, na: 0, ..Default::default() }.pass_rate(), 100.0);
    }

    #[test]
    fn buckets_align_to_utc_and_weeks_start_on_monday() {
        assert_eq!(Interval::Week.bucket_of(at("2026-03-05T10:00:00Z")), at("2026-03-02"));
        assert_eq!(Interval::Day.bucket_of(at("2026-03-05T23:59:59Z")), at("2026-03-05"));
        assert_eq!(Interval::Hour.bucket_of(at("2026-03-05T10:59:00Z")), at("2026-03-05T10:00:00Z"));
        assert_eq!(Interval::Day.buckets_between(at("2026-03-01"), at("2026-03-08")), 7);
        assert_eq!(Interval::Day.buckets_between(at("2026-03-01T12:00:00Z"), at("2026-03-02T01:00:00Z")), 2);
        assert_eq!(Interval::Hour.buckets_between(at("2026-01-01"), at("2026-03-01")), 59 * 24);
    }

    #[test]
    fn costs_add_up_into_the_totals_and_each_value_and_a_bad_flag_is_named() {
        let input = ResultsInput {
            evaluation_id: Some(uuid::Uuid::nil().to_string()),
            include_cost: Some("TRUE".into()),
            breakdown: Some("env".into()),
            ..Default::default()
        };
        let query = parse_results_query(input.clone(), at("2026-03-08")).unwrap();
        assert!(query.include_cost);
        let refused = parse_results_query(ResultsInput { include_cost: Some("yes".into()), ..input }, at("2026-03-08"));
        assert_eq!(refused.unwrap_err(), FieldError::new("include_cost", Rule::NotABoolean));
        let row = |day: &str, value: &str, nano_usd, costed_runs| ResultRow {
            bucket: at(day),
            value: Some(value.to_owned()),
            counts: ResultCounts { pass: 1, cost: GroupCost { nano_usd, costed_runs }, ..Default::default() },
        };
        let rows =
            vec![row("2026-03-01", "prod", 500, 1), row("2026-03-02", "prod", 250, 1), row("2026-03-02", "dev", 1, 0)];
        let report = ResultsReport::from_rows(query, rows, 0);
        assert_eq!(report.totals.cost, GroupCost { nano_usd: 751, costed_runs: 2 });
        assert_eq!(report.breakdown_values[0].1.cost, GroupCost { nano_usd: 750, costed_runs: 2 });
        assert_eq!(GroupCost { nano_usd: 1_500_000_000, costed_runs: 1 }.usd(), 1.5);
    }

    #[test]
    fn breakdown_values_sort_by_runs_then_value_with_other_and_null_last() {
        let query = ResultsQuery {
            evaluation: EvaluationId(uuid::Uuid::nil()),
            date_from: at("2026-03-01"),
            date_to: at("2026-03-08"),
            breakdown: Some("env".into()),
            interval: Interval::Day,
            include_cost: false,
        };
        let row = |day: &str, value: Option<&str>, pass, fail| ResultRow {
            bucket: at(day),
            value: value.map(str::to_owned),
            counts: ResultCounts { pass, fail, na: 0, ..Default::default() },
        };
        let rows = vec![
            row("2026-03-02", Some("$other"), 9, 0),
            row("2026-03-02", None, 1, 1),
            row("2026-03-01", Some("prod"), 1, 1),
            row("2026-03-02", Some("prod"), 1, 0),
            row("2026-03-01", Some("b-staging"), 2, 0),
            row("2026-03-01", Some("a-dev"), 1, 1),
        ];
        let report = ResultsReport::from_rows(query, rows, 4);
        let order: Vec<Option<&str>> = report.breakdown_values.iter().map(|(v, _)| v.as_deref()).collect();
        assert_eq!(order, vec![Some("prod"), Some("a-dev"), Some("b-staging"), None, Some("$other")]);
        assert_eq!(report.totals, ResultCounts { pass: 15, fail: 3, na: 0, ..Default::default() });
        assert_eq!(report.trend[0].value.as_deref(), Some("prod"));
        assert_eq!(report.trend[0].bucket, at("2026-03-01"));
        assert_eq!(report.skipped_by_cap, 4);
    }
}
