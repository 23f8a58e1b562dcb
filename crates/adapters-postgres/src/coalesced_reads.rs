//! Point reads of concurrent requests answered by one statement.
//!
//! Under load most of a point read's cost is not the index lookup but the round trip around
//! it: a `send` and a `recv` in the service, the same in PostgreSQL, and a wake-up on each
//! side. Here the first of the concurrent readers leases a connection; the readers that
//! arrive while it waits for one (and while it lets the other ready requests run once)
//! hand it their keys, and it reads all of them with one statement over an array of keys,
//! then hands each its row. A reader alone reads alone, at the same cost as before.
//!
//! A reader whose gatherer went away without answering (its request was dropped) reads on
//! its own: nothing is lost, only the batching.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

use domain::RepositoryError;
use futures::future::BoxFuture;
use sqlx::PgConnection;
use tokio::sync::oneshot;

use crate::read_connections::ReadConnections;

/// One statement reading the rows of many keys: the rows found, each with its key.
pub type BatchStatement<K, V> =
    Box<dyn for<'c> Fn(&'c mut PgConnection, Vec<K>) -> BoxFuture<'c, Result<Vec<(K, V)>, sqlx::Error>> + Send + Sync>;

type Answer<V> = oneshot::Sender<Result<Option<V>, RepositoryError>>;

/// Reads of one kind of row by key, batched across concurrent callers.
pub struct CoalescedReads<K, V> {
    reads: ReadConnections,
    statement: BatchStatement<K, V>,
    gathering: Mutex<Gathering<K, V>>,
}

struct Gathering<K, V> {
    /// Whether a reader is gathering keys now (the next ones join it).
    open: bool,
    waiting: Vec<(K, Answer<V>)>,
}

impl<K, V> CoalescedReads<K, V> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Gathering<K, V>> {
        self.gathering.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What a reader does with its key.
enum Role<V> {
    /// Leases a connection, gathers the keys of the readers that join, reads them all.
    Gather,
    /// Waits for the gatherer's answer.
    Join(oneshot::Receiver<Result<Option<V>, RepositoryError>>),
    /// Reads alone (the gathering is full).
    Alone,
}

/// Most keys one statement reads; the readers beyond it read alone.
const MOST_KEYS: usize = 256;

impl<K, V> CoalescedReads<K, V>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    V: Clone + Send + 'static,
{
    pub fn new(reads: ReadConnections, statement: BatchStatement<K, V>) -> Self {
        Self { reads, statement, gathering: Mutex::new(Gathering { open: false, waiting: Vec::new() }) }
    }

    /// The row of `key`, if there is one.
    pub async fn get(&self, key: K) -> Result<Option<V>, RepositoryError> {
        let role = {
            let mut gathering = self.lock();
            if !gathering.open {
                gathering.open = true;
                Role::Gather
            } else if gathering.waiting.len() < MOST_KEYS {
                let (answer, answered) = oneshot::channel();
                gathering.waiting.push((key.clone(), answer));
                Role::Join(answered)
            } else {
                Role::Alone
            }
        };
        match role {
            Role::Gather => self.gather_and_read(key).await,
            Role::Join(answered) => match answered.await {
                Ok(answer) => answer,
                Err(_) => self.read_alone(key).await,
            },
            Role::Alone => self.read_alone(key).await,
        }
    }

    /// As the gatherer: leases a connection, takes the keys that joined meanwhile, reads
    /// them all with `own`, and answers the others.
    async fn gather_and_read(&self, own: K) -> Result<Option<V>, RepositoryError> {
        let gatherer = Gatherer(self);
        let lease = self.reads.lease().await;
        // The requests made ready by the same wake-up run before the keys are taken.
        tokio::task::yield_now().await;
        let joined = gatherer.close();
        let mut keys: Vec<K> = Vec::with_capacity(joined.len() + 1);
        keys.push(own.clone());
        keys.extend(joined.iter().map(|(key, _)| key.clone()));
        let rows = match lease {
            Ok(lease) => self.reads.read_on(lease, |connection| (self.statement)(connection, keys.clone())).await,
            Err(error) => Err(error),
        };
        let mut rows: HashMap<K, V> = match rows {
            Ok(rows) => rows.into_iter().collect(),
            Err(error) => {
                for (_, answer) in joined {
                    let _ = answer.send(Err(RepositoryError::new(anyhow::anyhow!("{:#}", error.0))));
                }
                return Err(error);
            }
        };
        for (key, answer) in joined {
            let _ = answer.send(Ok(rows.get(&key).cloned()));
        }
        Ok(rows.remove(&own))
    }

    /// Readers waiting for a gatherer's answer now.
    pub fn waiting(&self) -> usize {
        self.lock().waiting.len()
    }

    async fn read_alone(&self, key: K) -> Result<Option<V>, RepositoryError> {
        let rows = self.reads.read(|connection| (self.statement)(connection, vec![key.clone()])).await?;
        Ok(rows.into_iter().find(|(found, _)| *found == key).map(|(_, row)| row))
    }
}

/// The gathering in progress. Dropped before [`Gatherer::close`] (the gatherer's request
/// went away), it drops the keys that joined unanswered, so their readers read alone.
struct Gatherer<'a, K, V>(&'a CoalescedReads<K, V>);

impl<K, V> Gatherer<'_, K, V> {
    /// Ends the gathering, returning the keys that joined it.
    fn close(self) -> Vec<(K, Answer<V>)> {
        let joined = self.end();
        std::mem::forget(self);
        joined
    }

    fn end(&self) -> Vec<(K, Answer<V>)> {
        let mut gathering = self.0.lock();
        gathering.open = false;
        std::mem::take(&mut gathering.waiting)
    }
}

impl<K, V> Drop for Gatherer<'_, K, V> {
    fn drop(&mut self) {
        drop(self.end());
    }
}
