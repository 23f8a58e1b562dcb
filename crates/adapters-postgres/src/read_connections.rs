//! Connections for the hot single-statement reads, lent without sqlx's pool.
//!
//! sqlx's pool pings every connection it takes back (a `Sync`, then a wait for
//! `ReadyForQuery`) in case the caller's future was dropped mid-statement. On
//! `GET provider_keys/{id}/` that was a second round trip per request: twice PostgreSQL's
//! socket work and a spawned task in the service. Here a connection goes back only when
//! its statement ran to the end; one whose future was dropped, or whose statement failed,
//! is closed instead, which is the case the ping guards against.
//!
//! A connection that sat idle is asked whether its server is still there before it is
//! lent (as the pool does, see `pool::CHECK_IDLE_AFTER`), so a read never meets a
//! connection that a restart of PostgreSQL closed; idle connections are closed after a
//! while and replaced after a longer one.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use domain::RepositoryError;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};
use tokio::sync::{Semaphore, SemaphorePermit};

/// At most `size` connections, opened on first need and kept open while they stay healthy.
#[derive(Clone)]
pub struct ReadConnections {
    inner: Arc<Inner>,
}

/// Idle connections are closed after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Connections are replaced after this long.
const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);

struct Inner {
    options: PgConnectOptions,
    idle: Mutex<Vec<Idle>>,
    permits: Semaphore,
    size: usize,
}

/// A connection waiting for its next read.
struct Idle {
    connection: PgConnection,
    opened_at: Instant,
    since: Instant,
}

impl Inner {
    fn pop_idle(&self) -> Option<Idle> {
        self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).pop()
    }

    /// The newest idle connection that is still usable; the ones past their time, or whose
    /// server no longer answers, are closed on the way.
    async fn usable_idle(&self) -> Option<(PgConnection, Instant)> {
        while let Some(idle) = self.pop_idle() {
            let now = Instant::now();
            let idle_for = now.duration_since(idle.since);
            if idle_for >= IDLE_TIMEOUT || now.duration_since(idle.opened_at) >= MAX_LIFETIME {
                continue;
            }
            let mut connection = idle.connection;
            if idle_for < crate::pool::CHECK_IDLE_AFTER || connection.ping().await.is_ok() {
                return Some((connection, idle.opened_at));
            }
        }
        None
    }
}

impl ReadConnections {
    /// Connects where `pool` connects, with at most `size` connections of its own.
    pub fn new(pool: &PgPool, size: u32) -> Self {
        let size = size.max(1) as usize;
        let options = pool.connect_options().as_ref().clone();
        Self { inner: Arc::new(Inner { options, idle: Mutex::new(Vec::new()), permits: Semaphore::new(size), size }) }
    }

    /// A connection for one read; give it back with [`Lease::release`] once the read ended.
    pub async fn lease(&self) -> Result<Lease<'_>, RepositoryError> {
        let permit = self.inner.permits.acquire().await.map_err(RepositoryError::new)?;
        let (connection, opened_at) = match self.inner.usable_idle().await {
            Some(found) => found,
            None => (self.inner.options.connect().await.map_err(RepositoryError::new)?, Instant::now()),
        };
        Ok(Lease { owner: &self.inner, connection: Some(connection), opened_at, _permit: permit })
    }

    /// Connections open now: (lent, idle).
    pub fn usage(&self) -> (usize, usize) {
        let idle = self.inner.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).len();
        let lent = self.inner.size - self.inner.permits.available_permits();
        (lent, idle)
    }
}

/// One lent connection. Dropped without [`Lease::release`], it closes the connection.
pub struct Lease<'a> {
    owner: &'a Inner,
    connection: Option<PgConnection>,
    opened_at: Instant,
    _permit: SemaphorePermit<'a>,
}

impl Lease<'_> {
    pub fn connection(&mut self) -> &mut PgConnection {
        self.connection.as_mut().expect("a lease holds its connection until dropped")
    }

    /// Hands the connection back for the next read: call it only after a statement that
    /// completed (successfully or with an error PostgreSQL reported).
    pub fn release(mut self) {
        if let Some(connection) = self.connection.take() {
            let idle = Idle { connection, opened_at: self.opened_at, since: Instant::now() };
            self.owner.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(idle);
        }
    }

    /// The read's result, giving the connection back when PostgreSQL answered (rows or
    /// an error of its own) and closing it otherwise.
    pub fn finish<T>(self, result: Result<T, sqlx::Error>) -> Result<T, RepositoryError> {
        match result {
            Ok(value) => {
                self.release();
                Ok(value)
            }
            Err(error @ sqlx::Error::Database(_)) => {
                self.release();
                Err(RepositoryError::new(error))
            }
            Err(error) => Err(RepositoryError::new(error)),
        }
    }
}
