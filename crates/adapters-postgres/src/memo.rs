//! Rows read on every request, reused for a few seconds: the hot read then makes one round
//! trip instead of two or three. A change shows on every replica within the TTL.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Entries at most; past it the expired ones go, then all.
const CAPACITY: usize = 10_000;

pub(crate) struct Memo<K, V> {
    ttl: Duration,
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash, V: Clone> Memo<K, V> {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self { ttl, entries: Mutex::new(HashMap::new()) }
    }

    /// The value remembered for `key`, unless it is older than the TTL.
    pub(crate) fn get(&self, key: &K) -> Option<V> {
        match self.lock().get(key) {
            Some((stored, value)) if stored.elapsed() < self.ttl => Some(value.clone()),
            _ => None,
        }
    }

    pub(crate) fn put(&self, key: K, value: V) {
        let mut entries = self.lock();
        if entries.len() >= CAPACITY {
            let ttl = self.ttl;
            entries.retain(|_, (stored, _)| stored.elapsed() < ttl);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(key, (Instant::now(), value));
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, (Instant, V)>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_reused_within_its_ttl_only() {
        let memo = Memo::new(Duration::from_secs(60));
        memo.put("key", 1);
        assert_eq!(memo.get(&"key"), Some(1));
        assert_eq!(memo.get(&"other"), None);

        let expired = Memo::new(Duration::ZERO);
        expired.put("key", 1);
        assert_eq!(expired.get(&"key"), None, "an entry past its TTL is read again");
    }

    #[test]
    fn a_full_memo_drops_its_entries_rather_than_grow() {
        let memo = Memo::new(Duration::from_secs(60));
        for n in 0..CAPACITY {
            memo.put(n, n);
        }
        memo.put(CAPACITY, CAPACITY);
        assert_eq!(memo.lock().len(), 1, "all were fresh, so all went");
        assert_eq!(memo.get(&CAPACITY), Some(CAPACITY));
    }
}
