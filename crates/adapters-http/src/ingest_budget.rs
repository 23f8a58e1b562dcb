//! The memory that in-flight capture and OTLP bodies may hold, in the spirit of the
//! OpenTelemetry collector's memory limiter. Each request reserves what it will hold (its
//! body, then the parsed events and the encoded statement: about [`HELD_PER_BODY_BYTE`]
//! times the decoded body) before it reads a byte. Past the budget a request waits up to
//! the configured time, then gets 503 with `Retry-After`: the SDKs retry, nothing is lost.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// Bytes of memory one decoded body byte costs while its request runs: the body itself,
/// the parsed events (a JSON tree is about twice its text) and the statement's encoded
/// parameters. Measured with the bench's 18.5 MB batches.
pub const HELD_PER_BODY_BYTE: usize = 6;

/// The budget is counted in KiB: the semaphore's permits.
const UNIT: usize = 1024;

/// The seconds a 503 asks the client to wait.
const RETRY_AFTER_SECS: u64 = 1;

/// One budget per process, shared by every capture and OTLP request.
#[derive(Clone)]
pub struct IngestBudget {
    permits: Arc<Semaphore>,
    total_units: u32,
    wait: Duration,
}

impl IngestBudget {
    /// `limit_bytes` of memory for bodies in flight; a request waits at most `wait` for
    /// its share.
    pub fn new(limit_bytes: usize, wait: Duration) -> Self {
        let total_units = u32::try_from((limit_bytes / UNIT).max(1)).unwrap_or(u32::MAX);
        Self { permits: Arc::new(Semaphore::new(total_units as usize)), total_units, wait }
    }

    /// KiB reserved by requests now.
    pub fn reserved_kib(&self) -> usize {
        self.total_units as usize - self.permits.available_permits()
    }

    /// An empty reservation, grown with [`Reservation::grow_to`].
    pub fn reservation(&self) -> Reservation {
        Reservation { budget: self.clone(), permit: None, units: 0 }
    }

    fn units_for(&self, bytes: usize) -> u32 {
        // A single request larger than the whole budget may still run, alone.
        u32::try_from(bytes.div_ceil(UNIT)).unwrap_or(u32::MAX).min(self.total_units)
    }
}

/// What one request holds of the budget; given back when dropped.
pub struct Reservation {
    budget: IngestBudget,
    permit: Option<OwnedSemaphorePermit>,
    units: u32,
}

impl Reservation {
    /// Holds at least `bytes` in all (never less than already held), waiting up to the
    /// budget's wait; 503 with `Retry-After` when the memory does not free up in time.
    pub async fn grow_to(&mut self, bytes: usize) -> Result<(), ApiError> {
        let wanted = self.budget.units_for(bytes);
        if wanted <= self.units {
            return Ok(());
        }
        let more = wanted - self.units;
        let acquire = self.budget.permits.clone().acquire_many_owned(more);
        let permit = match tokio::time::timeout(self.budget.wait, acquire).await {
            Ok(Ok(permit)) => permit,
            // The semaphore is never closed; treat it like a full budget if it were.
            Ok(Err(_)) | Err(_) => {
                metrics::counter!("llma_ingest_memory_refused_total").increment(1);
                return Err(ApiError::ingest_memory_busy(RETRY_AFTER_SECS));
            }
        };
        match &mut self.permit {
            Some(held) => held.merge(permit),
            None => self.permit = Some(permit),
        }
        self.units = wanted;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;

    use super::*;

    #[tokio::test]
    async fn past_the_budget_a_request_waits_then_gets_503_with_retry_after() {
        let budget = IngestBudget::new(10 * UNIT, Duration::ZERO);
        let mut first = budget.reservation();
        first.grow_to(6 * UNIT).await.unwrap();
        first.grow_to(2 * UNIT).await.unwrap();
        assert_eq!(budget.reserved_kib(), 6, "a reservation never shrinks while held");

        let mut second = budget.reservation();
        let refused = second.grow_to(5 * UNIT).await.unwrap_err().into_response();
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.headers()["retry-after"], "1");
        second.grow_to(4 * UNIT).await.unwrap();
        assert_eq!(budget.reserved_kib(), 10);

        drop(first);
        assert_eq!(budget.reserved_kib(), 4, "a finished request gives its share back");
    }

    #[tokio::test]
    async fn a_request_larger_than_the_budget_runs_alone_and_a_waiting_one_gets_in_when_memory_frees() {
        let budget = IngestBudget::new(10 * UNIT, Duration::from_secs(30));
        let mut huge = budget.reservation();
        huge.grow_to(1000 * UNIT).await.unwrap();
        assert_eq!(budget.reserved_kib(), 10);

        let waiting = {
            let budget = budget.clone();
            tokio::spawn(async move {
                let mut next = budget.reservation();
                next.grow_to(UNIT).await.map(|()| next)
            })
        };
        drop(huge);
        let next = waiting.await.unwrap().unwrap();
        assert_eq!(budget.reserved_kib(), 1);
        drop(next);
    }
}
