//! Inserting rows that are almost always new without `ON CONFLICT DO NOTHING`.
//!
//! A batch's idempotency claims (`ai_event_ids`) and its generations' judge jobs are new
//! but for a re-sent batch. `ON CONFLICT` makes PostgreSQL probe the unique index before
//! each row and insert it speculatively: about 5 µs a row each for the claims and the
//! jobs, a tenth of the database's work per judged generation. A plain insert checks the
//! same uniqueness while it inserts and fails the statement on a duplicate; that failure
//! is answered by the tolerant statement (at once for a single statement, by the
//! transaction's retry inside a transaction), and for a while after it every insert is
//! tolerant, since a client that re-sends one batch tends to re-send more.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long after a duplicate every insert skips existing rows as it goes.
const TOLERANT_AFTER_CONFLICT: Duration = Duration::from_secs(60);

/// How a statement treats a row whose key exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnExisting {
    /// The statement fails (unique violation): nothing was expected to exist.
    Fail,
    /// The row is skipped (`ON CONFLICT DO NOTHING`).
    Skip,
}

impl OnExisting {
    /// Of a statement's two forms, the one for this treatment.
    pub(crate) fn statement(self, failing: &'static str, skipping: &'static str) -> &'static str {
        match self {
            Self::Fail => failing,
            Self::Skip => skipping,
        }
    }
}

/// The process's memory of the last duplicate met by an insert that expected none.
#[derive(Clone)]
pub(crate) struct FreshInserts {
    started: Instant,
    /// Milliseconds from `started` to the last duplicate, plus one; 0 for never.
    last_conflict: Arc<AtomicU64>,
}

impl FreshInserts {
    pub(crate) fn new() -> Self {
        Self { started: Instant::now(), last_conflict: Arc::new(AtomicU64::new(0)) }
    }

    /// How the next insert of rows expected to be new treats an existing one.
    pub(crate) fn on_existing(&self) -> OnExisting {
        on_existing_at(self.last_conflict.load(Ordering::Relaxed), self.elapsed_ms())
    }

    /// Notes that an insert met an existing row (so that the next ones, the retry among
    /// them, skip existing rows).
    pub(crate) fn met_existing(&self) {
        self.last_conflict.store(self.elapsed_ms() + 1, Ordering::Relaxed);
    }

    /// Whether `error` is an insert made `on_existing` meeting an existing row of `key`
    /// (a unique violation, SQLSTATE 23505, of that constraint); if so, noted.
    pub(crate) fn met_existing_in(&self, error: &sqlx::Error, on_existing: OnExisting, key: &str) -> bool {
        let duplicate = on_existing == OnExisting::Fail
            && error
                .as_database_error()
                .is_some_and(|db| db.code().as_deref() == Some("23505") && db.constraint() == Some(key));
        if duplicate {
            self.met_existing();
        }
        duplicate
    }

    fn elapsed_ms(&self) -> u64 {
        millis(self.started.elapsed())
    }
}

/// `last_conflict` as stored (0 for never), at `now_ms` from the same start.
fn on_existing_at(last_conflict: u64, now_ms: u64) -> OnExisting {
    let recent = last_conflict != 0 && now_ms.saturating_sub(last_conflict - 1) < millis(TOLERANT_AFTER_CONFLICT);
    if recent { OnExisting::Skip } else { OnExisting::Fail }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_expected_new_until_a_duplicate_is_met() {
        let fresh = FreshInserts::new();
        assert_eq!(fresh.on_existing(), OnExisting::Fail);
        fresh.clone().met_existing();
        assert_eq!(fresh.on_existing(), OnExisting::Skip, "clones share the memory");
    }

    #[test]
    fn a_duplicate_is_remembered_for_the_window_only() {
        let window = millis(TOLERANT_AFTER_CONFLICT);
        // Met at 1,000 ms (stored as 1,001).
        assert_eq!(on_existing_at(1_001, 1_000), OnExisting::Skip);
        assert_eq!(on_existing_at(1_001, 1_000 + window - 1), OnExisting::Skip);
        assert_eq!(on_existing_at(1_001, 1_000 + window), OnExisting::Fail);
        assert_eq!(on_existing_at(0, 5), OnExisting::Fail, "never met");
        // Met at the very start (stored as 1).
        assert_eq!(on_existing_at(1, 0), OnExisting::Skip);
    }
}
