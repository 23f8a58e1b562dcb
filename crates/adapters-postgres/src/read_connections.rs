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
//! while and replaced after a longer one. Should a reused connection still turn out to be
//! lost when its read runs (the server went away between the check and the statement), the
//! read runs once more on a new connection: a read changes nothing, and a lost session
//! answered nothing.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use domain::RepositoryError;
use futures::future::BoxFuture;
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
    check_idle_after: Duration,
}

/// A connection waiting for its next read.
struct Idle {
    connection: PgConnection,
    opened_at: Instant,
    since: Instant,
}

impl Inner {
    async fn connect(&self) -> Result<PgConnection, RepositoryError> {
        self.options.connect().await.map_err(RepositoryError::new)
    }

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
            if idle_for < self.check_idle_after || connection.ping().await.is_ok() {
                return Some((connection, idle.opened_at));
            }
        }
        None
    }
}

impl ReadConnections {
    /// Connects where `pool` connects, with at most `size` connections of its own.
    pub fn new(pool: &PgPool, size: u32) -> Self {
        Self::checking_idle_after(pool, size, crate::pool::CHECK_IDLE_AFTER)
    }

    /// [`ReadConnections::new`], checking connections idle at least `check_idle_after`
    /// (tests lengthen it to meet a lost connection on purpose).
    pub fn checking_idle_after(pool: &PgPool, size: u32, check_idle_after: Duration) -> Self {
        let size = size.max(1) as usize;
        let options = pool.connect_options().as_ref().clone();
        let idle = Mutex::new(Vec::new());
        Self { inner: Arc::new(Inner { options, idle, permits: Semaphore::new(size), size, check_idle_after }) }
    }

    /// A connection for one read; give it back with [`Lease::release`] once the read ended.
    pub async fn lease(&self) -> Result<Lease<'_>, RepositoryError> {
        let permit = self.inner.permits.acquire().await.map_err(RepositoryError::new)?;
        let (connection, opened_at, reused) = match self.inner.usable_idle().await {
            Some((connection, opened_at)) => (connection, opened_at, true),
            None => (self.inner.connect().await?, Instant::now(), false),
        };
        Ok(Lease { owner: &self.inner, connection: Some(connection), opened_at, reused, _permit: permit })
    }

    /// Runs one read `statement` on a lent connection. When the connection was reused and
    /// turns out to be lost, the statement runs once more on a new connection.
    pub async fn read<T>(
        &self,
        statement: impl for<'c> Fn(&'c mut PgConnection) -> BoxFuture<'c, Result<T, sqlx::Error>>,
    ) -> Result<T, RepositoryError> {
        let lease = self.lease().await?;
        self.read_on(lease, statement).await
    }

    /// [`ReadConnections::read`] on a connection already lent.
    pub async fn read_on<T>(
        &self,
        mut lease: Lease<'_>,
        statement: impl for<'c> Fn(&'c mut PgConnection) -> BoxFuture<'c, Result<T, sqlx::Error>>,
    ) -> Result<T, RepositoryError> {
        let result = statement(lease.connection()).await;
        match result {
            Err(error) if lease.reused && crate::pool::connection_lost(&error) => {
                tracing::info!(%error, "a reused read connection was lost; reading on a new one");
                let mut lease = lease.reconnect().await?;
                let result = statement(lease.connection()).await;
                lease.finish(result)
            }
            result => lease.finish(result),
        }
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
    /// Whether the connection served an earlier read (so may have been lost since).
    reused: bool,
    _permit: SemaphorePermit<'a>,
}

impl Lease<'_> {
    /// The same lease on a new connection, the current one closed.
    async fn reconnect(mut self) -> Result<Self, RepositoryError> {
        drop(self.connection.take());
        let connection = self.owner.connect().await?;
        self.connection = Some(connection);
        self.opened_at = Instant::now();
        self.reused = false;
        Ok(self)
    }

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
            Err(error @ sqlx::Error::Database(_)) if !crate::pool::connection_lost(&error) => {
                self.release();
                Err(RepositoryError::new(error))
            }
            Err(error) => Err(RepositoryError::new(error)),
        }
    }
}
