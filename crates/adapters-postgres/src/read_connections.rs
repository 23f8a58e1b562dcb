//! Connections for the hot single-statement reads, lent without sqlx's pool.
//!
//! sqlx's pool pings every connection it takes back (a `Sync`, then a wait for
//! `ReadyForQuery`) in case the caller's future was dropped mid-statement. On
//! `GET provider_keys/{id}/` that was a second round trip per request: twice PostgreSQL's
//! socket work and a spawned task in the service. Here a connection goes back only when
//! its statement ran to the end; one whose future was dropped, or whose statement failed,
//! is closed instead, which is the case the ping guards against.

use std::sync::{Arc, Mutex};

use domain::RepositoryError;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, PgConnection, PgPool};
use tokio::sync::{Semaphore, SemaphorePermit};

/// At most `size` connections, opened on first need and kept open while they stay healthy.
#[derive(Clone)]
pub struct ReadConnections {
    inner: Arc<Inner>,
}

struct Inner {
    options: PgConnectOptions,
    idle: Mutex<Vec<PgConnection>>,
    permits: Semaphore,
    size: usize,
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
        let idle = self.inner.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).pop();
        let connection = match idle {
            Some(connection) => connection,
            None => self.inner.options.connect().await.map_err(RepositoryError::new)?,
        };
        Ok(Lease { owner: &self.inner, connection: Some(connection), _permit: permit })
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
            self.owner.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(connection);
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
