//! Schedule maths: recurrence rules in a report's zone, the next delivery date, a run's
//! period, and the gates an automatic run must pass (cooldown, daily cap, alert).

use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Tz;
use rrule::{Frequency as RuleFrequency, RRule, Unvalidated};

use super::model::{AlertCondition, AlertOperator, Period, ResultCounts};

/// A recurrence rule that cannot be used (every cause answers alike, spec section 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unusable recurrence rule")]
pub struct InvalidRule;

/// The earliest a new schedule may first deliver: this long from now.
pub const FIRST_DELIVERY_FLOOR: Duration = Duration::minutes(15);

/// How many occurrences an expansion may look at; user input can make a rule sparse.
const EXPANSION_LIMIT: u16 = 1_000;

/// A parsed recurrence rule (no DTSTART: `starts_at` is the start).
#[derive(Debug, Clone)]
pub struct Recurrence {
    rule: RRule<Unvalidated>,
    /// Sub-daily without BYHOUR: expanded in UTC, because the library drops the
    /// repeated fall-back hour when it expands hourly rules in a zone.
    in_utc: bool,
}

/// Parses an RFC 5545 RRULE value (optionally prefixed `RRULE:`). DTSTART is refused (the
/// report's `starts_at` is the start), and so are rules more frequent than hourly.
pub fn parse_rule(text: &str) -> Result<Recurrence, InvalidRule> {
    let text = text.trim();
    if text.is_empty() || text.to_ascii_uppercase().contains("DTSTART") || text.contains('\n') {
        return Err(InvalidRule);
    }
    let body = text.strip_prefix("RRULE:").unwrap_or(text);
    let rule: RRule<Unvalidated> = body.parse().map_err(|_| InvalidRule)?;
    let in_utc = match rule.get_freq() {
        RuleFrequency::Hourly => rule.get_by_hour().is_empty(),
        RuleFrequency::Minutely | RuleFrequency::Secondly => return Err(InvalidRule),
        _ => false,
    };
    // Validation needs a start; any will do to find a malformed combination.
    rule.clone().validate(rrule::Tz::UTC.from_utc_datetime(&Utc::now().naive_utc())).map_err(|_| InvalidRule)?;
    Ok(Recurrence { rule, in_utc })
}

/// An IANA zone name.
pub fn parse_zone(name: &str) -> Option<Tz> {
    name.parse::<Tz>().ok()
}

impl Recurrence {
    /// The first occurrences strictly after `after` (at most `count`), for a rule that
    /// starts at `starts_at` in `zone`.
    pub fn occurrences_after(
        &self,
        starts_at: DateTime<Utc>,
        zone: Tz,
        after: DateTime<Utc>,
        count: usize,
    ) -> Vec<DateTime<Utc>> {
        let tz = if self.in_utc { rrule::Tz::UTC } else { rrule::Tz::Tz(zone) };
        let start = tz.from_utc_datetime(&starts_at.naive_utc());
        let Ok(set) = self.rule.clone().build(start) else {
            return Vec::new();
        };
        let from = tz.from_utc_datetime(&after.naive_utc());
        let mut found = Vec::with_capacity(count);
        let mut result = set.after(from).all(EXPANSION_LIMIT);
        result.dates.sort();
        for date in result.dates {
            let date = date.with_timezone(&Utc);
            if date > after && found.last() != Some(&date) {
                found.push(date);
                if found.len() == count {
                    break;
                }
            }
        }
        found
    }

    /// The next delivery: the first occurrence after max(now + 15 minutes, `from`).
    pub fn next_delivery(
        &self,
        starts_at: DateTime<Utc>,
        zone: Tz,
        now: DateTime<Utc>,
        from: Option<DateTime<Utc>>,
    ) -> Option<DateTime<Utc>> {
        let floor = (now + FIRST_DELIVERY_FLOOR).max(from.unwrap_or(now));
        // Occurrences before the start do not exist; asking from just before it
        // includes an occurrence at the start itself.
        let after = floor.max(starts_at - Duration::seconds(1));
        self.occurrences_after(starts_at, zone, after, 1).into_iter().next()
    }

    /// A first scheduled run's period length: the gap between the two occurrences that
    /// follow `now` (a day for a daily rule, a week for a weekly one).
    pub fn gap_after(&self, starts_at: DateTime<Utc>, zone: Tz, now: DateTime<Utc>) -> Option<Duration> {
        let after = now.max(starts_at - Duration::seconds(1));
        match self.occurrences_after(starts_at, zone, after, 2).as_slice() {
            [first, second] => Some(*second - *first),
            _ => None,
        }
    }
}

/// When the cooldown after `last_delivered_at` ends.
pub fn cooldown_over(last_delivered_at: Option<DateTime<Utc>>, cooldown_minutes: u32, now: DateTime<Utc>) -> bool {
    last_delivered_at.is_none_or(|last| now >= last + Duration::minutes(i64::from(cooldown_minutes)))
}

/// Whether another automatic run fits under the daily cap, given how many ran in the
/// last 24 hours.
pub fn under_daily_cap(automatic_runs_last_day: u64, cap: u32) -> bool {
    automatic_runs_last_day < u64::from(cap)
}

/// The window an alert looks at, ending now.
pub fn alert_window(condition: &AlertCondition, now: DateTime<Utc>) -> Period {
    Period { start: now - Duration::minutes(i64::from(condition.window_minutes)), end: now }
}

/// Whether `counts` over the window fire `condition`: enough applicable results, and the
/// pass rate strictly past the threshold on the bad side.
pub fn alert_fires(condition: &AlertCondition, counts: &ResultCounts) -> bool {
    if counts.pass + counts.fail < u64::from(condition.min_runs) {
        return false;
    }
    let rate = counts.pass_rate();
    match condition.operator {
        AlertOperator::Lt => rate < condition.pass_rate,
        AlertOperator::Gt => rate > condition.pass_rate,
    }
}

/// A run's period for a scheduled report: from the last delivery, else the rule's gap
/// back from now (a day when the rule has no two occurrences left).
pub fn scheduled_period(
    recurrence: Option<&Recurrence>,
    starts_at: Option<DateTime<Utc>>,
    zone: Tz,
    last_delivered_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Period {
    let start = last_delivered_at.filter(|last| *last < now).unwrap_or_else(|| {
        let gap = recurrence
            .zip(starts_at)
            .and_then(|(rule, starts_at)| rule.gap_after(starts_at, zone, now))
            .unwrap_or(Duration::days(1));
        now - gap
    });
    Period { start, end: now }
}

/// The unique key of an automatic run: at most one run per report and period, whoever
/// enqueues it. Scheduled runs key on the occurrence; every_n and alert on the delivery
/// they follow (the next one cannot be due before this one has moved it).
pub fn run_key(report: uuid::Uuid, trigger: super::model::Trigger, anchor: Option<DateTime<Utc>>) -> String {
    let anchor = anchor.map_or_else(|| "never".to_owned(), |at| at.timestamp_micros().to_string());
    format!("{report}:{}:{anchor}", trigger.as_str())
}

/// The unique key of a manual run: one per report and minute (repeated calls coalesce).
pub fn manual_run_key(report: uuid::Uuid, now: DateTime<Utc>) -> String {
    format!("{report}:manual:{}", now.timestamp().div_euclid(60))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Timelike;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn rules_with_dtstart_or_garbage_are_refused() {
        assert_eq!(parse_rule("DTSTART:20260101T000000Z\nRRULE:FREQ=DAILY").unwrap_err(), InvalidRule);
        assert_eq!(parse_rule("FREQ=DAILY;DTSTART=20260101").unwrap_err(), InvalidRule);
        assert_eq!(parse_rule("FREQ=SOMETIMES").unwrap_err(), InvalidRule);
        assert_eq!(parse_rule("").unwrap_err(), InvalidRule);
        assert_eq!(parse_rule("FREQ=MINUTELY").unwrap_err(), InvalidRule);
        assert!(parse_rule("FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0;BYSECOND=0").is_ok());
        assert!(parse_rule("RRULE:FREQ=DAILY").is_ok());
    }

    #[test]
    fn a_daily_rule_keeps_its_local_hour_across_both_dst_switches() {
        let zone = parse_zone("Europe/Berlin").unwrap();
        let rule = parse_rule("FREQ=DAILY;BYHOUR=9;BYMINUTE=0;BYSECOND=0").unwrap();
        let start = utc("2026-03-01T08:00:00Z");
        // Spring forward on 29 March 2026: 09:00 local is 08:00 UTC before, 07:00 after.
        let spring = rule.occurrences_after(start, zone, utc("2026-03-28T00:00:00Z"), 2);
        assert_eq!(spring, vec![utc("2026-03-28T08:00:00Z"), utc("2026-03-29T07:00:00Z")]);
        // Fall back on 25 October 2026.
        let fall = rule.occurrences_after(start, zone, utc("2026-10-24T00:00:00Z"), 2);
        assert_eq!(fall, vec![utc("2026-10-24T07:00:00Z"), utc("2026-10-25T08:00:00Z")]);
    }

    #[test]
    fn an_hourly_rule_keeps_the_repeated_fall_back_hour() {
        let zone = parse_zone("America/New_York").unwrap();
        let rule = parse_rule("FREQ=HOURLY").unwrap();
        let start = utc("2026-10-01T00:00:00Z");
        // 1 November 2026, 01:00-02:00 local happens twice (05:00 and 06:00 UTC).
        let hours = rule.occurrences_after(start, zone, utc("2026-11-01T04:30:00Z"), 4);
        assert_eq!(
            hours,
            vec![
                utc("2026-11-01T05:00:00Z"),
                utc("2026-11-01T06:00:00Z"),
                utc("2026-11-01T07:00:00Z"),
                utc("2026-11-01T08:00:00Z")
            ]
        );
    }

    #[test]
    fn the_next_delivery_is_at_least_fifteen_minutes_away() {
        let zone = parse_zone("UTC").unwrap();
        let rule = parse_rule("FREQ=HOURLY").unwrap();
        let start = utc("2026-01-01T00:00:00Z");
        let now = utc("2026-06-01T10:50:00Z");
        // 11:00 is only 10 minutes away: the next one is 12:00.
        assert_eq!(rule.next_delivery(start, zone, now, None), Some(utc("2026-06-01T12:00:00Z")));
        let now = utc("2026-06-01T10:40:00Z");
        assert_eq!(rule.next_delivery(start, zone, now, None), Some(utc("2026-06-01T11:00:00Z")));
        // After a delivery at 11:00, the next is after it.
        assert_eq!(
            rule.next_delivery(start, zone, now, Some(utc("2026-06-01T13:00:00Z"))),
            Some(utc("2026-06-01T14:00:00Z"))
        );
    }

    #[test]
    fn a_future_start_is_the_first_delivery_and_a_finished_rule_has_none() {
        let zone = parse_zone("Asia/Tokyo").unwrap();
        let rule = parse_rule("FREQ=WEEKLY;COUNT=2").unwrap();
        let start = utc("2027-01-04T00:00:00Z");
        let now = utc("2026-12-01T00:00:00Z");
        assert_eq!(rule.next_delivery(start, zone, now, None), Some(start));
        let later = utc("2027-02-01T00:00:00Z");
        assert_eq!(rule.next_delivery(start, zone, later, None), None);
    }

    #[test]
    fn a_daily_next_delivery_in_a_zone_lands_on_the_local_hour() {
        let zone = parse_zone("America/Los_Angeles").unwrap();
        let rule = parse_rule("FREQ=DAILY;BYHOUR=8;BYMINUTE=0;BYSECOND=0").unwrap();
        let next = rule.next_delivery(utc("2026-01-01T00:00:00Z"), zone, utc("2026-07-10T12:00:00Z"), None).unwrap();
        assert_eq!(next.with_timezone(&zone).hour(), 8);
        assert_eq!(next, utc("2026-07-10T15:00:00Z"));
    }

    #[test]
    fn scheduled_periods_follow_the_rule_or_the_last_delivery() {
        let zone = parse_zone("UTC").unwrap();
        let now = utc("2026-06-10T09:00:00Z");
        let start = Some(utc("2026-01-01T09:00:00Z"));
        for (text, days) in [("FREQ=DAILY", 1), ("FREQ=WEEKLY", 7), ("FREQ=HOURLY", 0)] {
            let rule = parse_rule(text).unwrap();
            let period = scheduled_period(Some(&rule), start, zone, None, now);
            let expected = if days == 0 { Duration::hours(1) } else { Duration::days(days) };
            assert_eq!(period.end - period.start, expected, "{text}");
        }
        let monthly = parse_rule("FREQ=MONTHLY").unwrap();
        let period = scheduled_period(Some(&monthly), start, zone, None, now);
        assert_eq!(period.start, utc("2026-05-10T09:00:00Z"), "July 1 to August 1 is 31 days");
        let last = utc("2026-06-09T09:00:00Z");
        assert_eq!(scheduled_period(Some(&monthly), start, zone, Some(last), now).start, last);
    }

    #[test]
    fn previous_periods_have_the_same_length() {
        let period = Period { start: utc("2026-06-02T00:00:00Z"), end: utc("2026-06-03T00:00:00Z") };
        assert_eq!(period.previous(), Period { start: utc("2026-06-01T00:00:00Z"), end: period.start });
    }

    #[test]
    fn cooldown_and_daily_cap_at_their_edges() {
        let last = utc("2026-06-01T10:00:00Z");
        assert!(cooldown_over(None, 60, last));
        assert!(!cooldown_over(Some(last), 60, utc("2026-06-01T10:59:59Z")));
        assert!(cooldown_over(Some(last), 60, utc("2026-06-01T11:00:00Z")));
        assert!(under_daily_cap(9, 10));
        assert!(!under_daily_cap(10, 10));
    }

    #[test]
    fn alerts_fire_strictly_past_the_threshold_with_enough_runs() {
        let below = AlertCondition { operator: AlertOperator::Lt, pass_rate: 80.0, min_runs: 10, window_minutes: 60 };
        assert!(alert_fires(&below, &ResultCounts { pass: 7, fail: 3, na: 5 }));
        assert!(!alert_fires(&below, &ResultCounts { pass: 8, fail: 2, na: 0 }), "exactly 80 is not below");
        assert!(!alert_fires(&below, &ResultCounts { pass: 0, fail: 9, na: 50 }), "9 applicable < 10");
        let above = AlertCondition { operator: AlertOperator::Gt, ..below };
        assert!(alert_fires(&above, &ResultCounts { pass: 9, fail: 1, na: 0 }));
        assert!(!alert_fires(&above, &ResultCounts { pass: 8, fail: 2, na: 0 }));
    }

    #[test]
    fn run_keys_name_the_period_and_manual_keys_the_minute() {
        let id = uuid::Uuid::nil();
        let at = utc("2026-06-01T10:00:00Z");
        assert_ne!(
            run_key(id, super::super::model::Trigger::Scheduled, Some(at)),
            run_key(id, super::super::model::Trigger::Scheduled, Some(at + Duration::hours(1)))
        );
        assert_eq!(manual_run_key(id, at), manual_run_key(id, at + Duration::seconds(59)));
        assert_ne!(manual_run_key(id, at), manual_run_key(id, at + Duration::seconds(60)));
    }
}
