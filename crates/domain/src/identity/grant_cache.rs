//! A short-lived, bounded memo of API-key grants, so that a burst of requests with the same
//! key costs one lookup. Staleness is bounded by the TTL: a removed key or membership stops
//! working at most that long after the change.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{ApiKeyGrant, TokenHash};
use crate::ProjectId;

/// How long a grant is reused by default.
pub const DEFAULT_GRANT_TTL: Duration = Duration::from_secs(5);
const CAPACITY: usize = 10_000;

type Key = (TokenHash, ProjectId);

pub(crate) struct GrantCache {
    ttl: Duration,
    entries: Mutex<HashMap<Key, (Instant, ApiKeyGrant)>>,
}

impl GrantCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self { ttl, entries: Mutex::new(HashMap::new()) }
    }

    pub(crate) fn get(&self, hash: &TokenHash, project: ProjectId) -> Option<ApiKeyGrant> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.lock().expect("grant cache lock");
        let (stored, grant) = entries.get(&(hash.clone(), project))?;
        (stored.elapsed() < self.ttl).then(|| grant.clone())
    }

    /// Only found grants are kept: unknown tokens must not be able to fill the memo.
    pub(crate) fn put(&self, hash: &TokenHash, project: ProjectId, grant: &ApiKeyGrant) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().expect("grant cache lock");
        if entries.len() >= CAPACITY {
            let ttl = self.ttl;
            entries.retain(|_, (stored, _)| stored.elapsed() < ttl);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert((hash.clone(), project), (Instant::now(), grant.clone()));
    }
}
