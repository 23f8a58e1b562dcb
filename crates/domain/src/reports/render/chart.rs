//! The run page's pass-rate trend as inline SVG: the period and the previous one side by
//! side (hourly buckets up to two days, else daily). No script, nothing loaded.

use chrono::{DateTime, Duration, Utc};
use maud::{Markup, html};

use crate::reports::model::{Period, TrendPoint};

/// A trend bucket's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Hour,
    Day,
}

impl Bucket {
    /// Hourly for periods up to two days, else daily.
    pub fn for_period(period: &Period) -> Self {
        if period.end - period.start <= Duration::days(2) { Self::Hour } else { Self::Day }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hour => "hour",
            Self::Day => "day",
        }
    }

    fn length(self) -> Duration {
        match self {
            Self::Hour => Duration::hours(1),
            Self::Day => Duration::days(1),
        }
    }
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 40.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

/// Pass rates (0..=100) per bucket of `period`, `None` where nothing applied.
fn rates(period: &Period, bucket: Bucket, points: &[TrendPoint]) -> Vec<Option<f64>> {
    let step = bucket.length();
    let count = ((period.end - period.start).num_seconds() as f64 / step.num_seconds() as f64).ceil().max(1.0) as usize;
    let mut sums = vec![(0u64, 0u64); count.min(400)];
    for point in points.iter().filter(|p| p.bucket >= period.start - step && p.bucket < period.end) {
        let offset = (point.bucket.max(period.start) - period.start).num_seconds() / step.num_seconds();
        if let Some(slot) = usize::try_from(offset).ok().and_then(|i| sums.get_mut(i)) {
            slot.0 += point.pass;
            slot.1 += point.fail;
        }
    }
    sums.into_iter().map(|(pass, fail)| (pass + fail > 0).then(|| pass as f64 / (pass + fail) as f64 * 100.0)).collect()
}

fn polyline(values: &[Option<f64>], slots: usize) -> String {
    let plot_width = WIDTH - LEFT - 10.0;
    let plot_height = HEIGHT - TOP - BOTTOM;
    let step = if slots > 1 { plot_width / (slots - 1) as f64 } else { 0.0 };
    values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            v.map(|rate| format!("{:.1},{:.1}", LEFT + step * i as f64, TOP + plot_height * (1.0 - rate / 100.0)))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn label(at: DateTime<Utc>, bucket: Bucket) -> String {
    match bucket {
        Bucket::Hour => at.format("%b %d %H:%M UTC").to_string(),
        Bucket::Day => at.format("%b %d").to_string(),
    }
}

/// The chart, or a sentence when neither period has a pass rate.
pub fn trend_svg(period: &Period, points: &[TrendPoint]) -> Markup {
    let bucket = Bucket::for_period(period);
    let current = rates(period, bucket, points);
    let previous = rates(&period.previous(), bucket, points);
    if current.iter().chain(&previous).all(Option::is_none) {
        return html! { p class="muted" { "No pass or fail results to chart in these periods." } };
    }
    let slots = current.len().max(previous.len());
    let plot_bottom = HEIGHT - BOTTOM;
    html! {
        svg xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) width="100%" role="img"
            aria-label=(format!("Pass rate per {}: this period and the previous one", bucket.as_str())) {
            @for rate in [0, 50, 100] {
                @let y = TOP + (HEIGHT - TOP - BOTTOM) * (1.0 - f64::from(rate) / 100.0);
                line x1=(LEFT) x2=(WIDTH - 10.0) y1=(y) y2=(y) stroke="#e5e7eb" {}
                text x=(LEFT - 6.0) y=(y + 4.0) font-size="11" text-anchor="end" fill="#6b7280" { (rate) "%" }
            }
            polyline points=(polyline(&previous, slots)) fill="none" stroke="#9ca3af" stroke-width="2" stroke-dasharray="5 4" {}
            polyline points=(polyline(&current, slots)) fill="none" stroke="#2563eb" stroke-width="2.5" {}
            text x=(LEFT) y=(plot_bottom + 18.0) font-size="11" fill="#6b7280" { (label(period.start, bucket)) }
            text x=(WIDTH - 10.0) y=(plot_bottom + 18.0) font-size="11" text-anchor="end" fill="#6b7280" { (label(period.end, bucket)) }
        }
        p class="legend" {
            span style="color:#2563eb" { "━ this period" } " "
            span style="color:#9ca3af" { "┅ previous period" } " · per " (bucket.as_str())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(hours: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-06-01T00:00:00Z").unwrap().with_timezone(&Utc) + Duration::hours(hours)
    }

    #[test]
    fn buckets_are_hourly_up_to_two_days() {
        assert_eq!(Bucket::for_period(&Period { start: at(0), end: at(48) }), Bucket::Hour);
        assert_eq!(Bucket::for_period(&Period { start: at(0), end: at(49) }), Bucket::Day);
    }

    #[test]
    fn both_periods_are_drawn() {
        let period = Period { start: at(24), end: at(48) };
        let points =
            vec![TrendPoint { bucket: at(2), pass: 1, fail: 1 }, TrendPoint { bucket: at(30), pass: 3, fail: 1 }];
        let svg = trend_svg(&period, &points).into_string();
        assert_eq!(svg.matches("<polyline").count(), 2, "{svg}");
        assert!(!svg.contains("<script"));
        let empty = trend_svg(&period, &[]).into_string();
        assert!(empty.contains("No pass or fail results"));
    }
}
