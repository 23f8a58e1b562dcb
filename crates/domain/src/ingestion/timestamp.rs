//! When an event happened: ISO 8601 parsing, client clock-skew correction and clamping.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, Utc};

/// How far in the future an event may be: a little under a day, as PostHog's capture
/// allows. Anything later comes from a client whose clock is wrong, and would sort as the
/// newest event for months.
pub const MAX_FUTURE: TimeDelta = TimeDelta::hours(23);

/// How far in the past an event may be. SDKs buffer events while offline for hours or
/// days, never for more than a year. Each month an event falls in is a partition of the
/// events table, created on demand; the project token is public, so without this bound
/// anyone holding it could create a partition for every month since 1970.
pub const MAX_PAST: TimeDelta = TimeDelta::days(400);

/// Parses an ISO 8601 instant: RFC 3339 (`2026-01-02T03:04:05.678+01:00`, `Z`, or a
/// space instead of `T`), a date and time without offset (taken as UTC), or a bare date
/// (midnight UTC). `None` for anything else.
pub fn parse_iso8601(raw: &str) -> Option<DateTime<Utc>> {
    let raw = raw.trim();
    if let Ok(instant) = DateTime::parse_from_rfc3339(raw) {
        return Some(instant.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(raw, format) {
            return Some(naive.and_utc());
        }
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok().and_then(|date| date.and_hms_opt(0, 0, 0)).map(|n| n.and_utc())
}

/// What a client said about an event's time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientTime {
    /// The event's `timestamp`, by the client's clock.
    pub timestamp: Option<DateTime<Utc>>,
    /// When the client sent the request, by the same clock (`sent_at`).
    pub sent_at: Option<DateTime<Utc>>,
    /// Milliseconds between the event and sending (`offset`), when no timestamp is given.
    pub offset_ms: Option<i64>,
}

/// The event's time in server time, as PostHog's capture computes it:
/// 1. `timestamp` and `sent_at`: `now - sent_at + timestamp` (the client's clock is off by
///    `sent_at - now`; the event is as old relative to sending as it says);
/// 2. `timestamp` alone: as given;
/// 3. `offset`: `now - offset`;
/// 4. otherwise `now` (the moment the request arrived).
///
/// Then clamped: later than `now + MAX_FUTURE` or earlier than `now - MAX_PAST` becomes
/// `now` (see those constants for why).
pub fn resolve(now: DateTime<Utc>, client: ClientTime) -> DateTime<Utc> {
    let resolved = match (client.timestamp, client.sent_at, client.offset_ms) {
        (Some(timestamp), Some(sent_at), _) => now.checked_add_signed(timestamp - sent_at),
        (Some(timestamp), None, _) => Some(timestamp),
        (None, _, Some(offset)) => {
            TimeDelta::try_milliseconds(offset).and_then(|offset| now.checked_sub_signed(offset))
        }
        (None, _, None) => Some(now),
    };
    match resolved {
        Some(instant) if instant <= now + MAX_FUTURE && instant >= now - MAX_PAST => instant,
        _ => now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(raw: &str) -> DateTime<Utc> {
        parse_iso8601(raw).unwrap()
    }

    #[test]
    fn iso8601_forms_the_sdks_send_are_understood() {
        let expected = at("2026-03-04T05:06:07Z");
        assert_eq!(at("2026-03-04T06:06:07+01:00"), expected);
        assert_eq!(at("2026-03-04 05:06:07+00:00"), expected);
        assert_eq!(at("2026-03-04T05:06:07"), expected);
        assert_eq!(at(" 2026-03-04T05:06:07.000000+00:00 "), expected);
        assert_eq!(at("2026-03-04"), at("2026-03-04T00:00:00Z"));
        for bad in ["", "yesterday", "2026-13-01", "1700000000", "2026-03-04T25:00:00Z"] {
            assert_eq!(parse_iso8601(bad), None, "{bad}");
        }
    }

    #[test]
    fn sent_at_corrects_the_clients_clock_skew() {
        let now = at("2026-03-04T12:00:00Z");
        // The client's clock is 2 hours fast; the event happened 5 s before it sent.
        let client = ClientTime {
            timestamp: Some(at("2026-03-04T13:59:55Z")),
            sent_at: Some(at("2026-03-04T14:00:00Z")),
            offset_ms: None,
        };
        assert_eq!(resolve(now, client), at("2026-03-04T11:59:55Z"));
    }

    #[test]
    fn a_timestamp_without_sent_at_is_taken_as_is() {
        let now = at("2026-03-04T12:00:00Z");
        let client = ClientTime { timestamp: Some(at("2026-03-01T08:00:00Z")), ..ClientTime::default() };
        assert_eq!(resolve(now, client), at("2026-03-01T08:00:00Z"));
    }

    #[test]
    fn offset_counts_back_from_now_and_nothing_means_now() {
        let now = at("2026-03-04T12:00:00Z");
        assert_eq!(
            resolve(now, ClientTime { offset_ms: Some(1500), ..ClientTime::default() }),
            now - TimeDelta::milliseconds(1500)
        );
        assert_eq!(resolve(now, ClientTime::default()), now);
    }

    #[test]
    fn absurd_times_are_clamped_to_now() {
        let now = at("2026-03-04T12:00:00Z");
        for timestamp in ["2026-03-06T12:00:00Z", "1970-01-01T00:00:00Z", "9999-12-31T23:59:59Z"] {
            let client = ClientTime { timestamp: Some(at(timestamp)), ..ClientTime::default() };
            assert_eq!(resolve(now, client), now, "{timestamp}");
        }
        assert_eq!(resolve(now, ClientTime { offset_ms: Some(i64::MAX), ..ClientTime::default() }), now);
        assert_eq!(resolve(now, ClientTime { offset_ms: Some(i64::MIN), ..ClientTime::default() }), now);
        // within the bounds: kept
        let client = ClientTime { timestamp: Some(at("2026-03-05T10:00:00Z")), ..ClientTime::default() };
        assert_eq!(resolve(now, client), at("2026-03-05T10:00:00Z"));
    }
}
