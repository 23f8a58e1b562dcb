//! Event retention (`LLMA_EVENT_RETENTION_DAYS`, spec section 10): events older than the
//! window are neither stored nor judged, and their partitions are dropped by housekeeping.

use chrono::{DateTime, Duration, Utc};

/// How long events are kept; `None` keeps everything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventRetention(Option<Duration>);

impl EventRetention {
    /// `days` = 0 keeps everything.
    pub fn days(days: u32) -> Self {
        Self((days > 0).then(|| Duration::days(i64::from(days))))
    }

    /// Keeps everything.
    pub fn forever() -> Self {
        Self(None)
    }

    /// The oldest instant kept at `now`; `None` when everything is kept.
    pub fn cutoff(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.0.map(|window| now - window)
    }

    /// Whether an event of `timestamp` is inside the window at `now`.
    pub fn keeps(&self, timestamp: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        self.cutoff(now).is_none_or(|cutoff| timestamp >= cutoff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_days_keeps_everything_and_the_window_is_inclusive() {
        let now = Utc::now();
        assert!(EventRetention::days(0).keeps(now - Duration::days(10_000), now));
        let month = EventRetention::days(30);
        assert!(month.keeps(now - Duration::days(30), now));
        assert!(!month.keeps(now - Duration::days(30) - Duration::seconds(1), now));
        assert_eq!(month.cutoff(now), Some(now - Duration::days(30)));
    }
}
