//! Hourly caps of evaluations (`max_runs_per_hour`), reserved when a batch queues its judge
//! jobs: per (evaluation, hour) the first judgements up to what is left are granted, the
//! rest refused and counted. The counters are read under their row locks, so the count is
//! exact with any number of replicas.

use std::borrow::Cow;
use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::PlannedJob;
use crate::jobs::NewJob;
use crate::{EvaluationId, ProjectId, RepositoryError};

/// One (evaluation, hour) counter.
pub type CapHour = (EvaluationId, DateTime<Utc>);

/// What a batch adds to one counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapCount {
    pub evaluation: EvaluationId,
    pub hour: DateTime<Utc>,
    pub granted: u32,
    pub refused: u32,
}

/// Hourly-cap statements inside a transaction (see [`crate::unit_of_work`]).
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait HourlyCapStatements: Send {
    /// The judgements already queued per counter (a counter not yet written counts 0),
    /// each counter locked until the transaction ends, in (evaluation, hour) order so that
    /// concurrent batches queue on them instead of deadlocking.
    async fn lock_counters(
        &mut self,
        project: ProjectId,
        counters: &[CapHour],
    ) -> Result<Vec<(CapHour, u32)>, RepositoryError>;

    /// Adds the batch's grants and refusals to the counters it locked.
    async fn add_to_counters(&mut self, counts: &[CapCount]) -> Result<(), RepositoryError>;
}

/// The jobs of a batch once its caps are applied.
#[derive(Debug)]
pub struct Allocation<'a> {
    /// The jobs to queue, without the evaluations their caps refused.
    pub jobs: Vec<Cow<'a, NewJob>>,
    /// What to add to each counter.
    pub counts: Vec<CapCount>,
    /// Judgements refused.
    pub refused: u64,
}

/// Every (evaluation, hour) counter `jobs` reserve from, with its cap, in counter order.
pub fn counters<'a>(jobs: impl IntoIterator<Item = &'a PlannedJob>) -> BTreeMap<CapHour, u32> {
    let mut wanted = BTreeMap::new();
    for cap in jobs.into_iter().flat_map(|job| &job.caps) {
        wanted.entry((cap.evaluation, cap.hour)).or_insert(cap.max.get());
    }
    wanted
}

/// Grants each job's reservations in order while its counter has room (`queued` says how
/// many each counter already holds; `caps` is [`counters`] of the same jobs).
pub fn allocate<'a>(
    jobs: Vec<&'a PlannedJob>,
    caps: &BTreeMap<CapHour, u32>,
    queued: &[(CapHour, u32)],
) -> Allocation<'a> {
    let mut left: BTreeMap<CapHour, u32> = BTreeMap::new();
    for (counter, already) in queued {
        if let Some(cap) = caps.get(counter) {
            left.insert(*counter, cap.saturating_sub(*already));
        }
    }
    let mut counts: BTreeMap<CapHour, (u32, u32)> = BTreeMap::new();
    let mut kept = Vec::with_capacity(jobs.len());
    for job in jobs {
        let mut refused = Vec::new();
        for cap in &job.caps {
            let counter = (cap.evaluation, cap.hour);
            let count = counts.entry(counter).or_insert((0, 0));
            let remaining = left.entry(counter).or_insert(0);
            if *remaining > 0 {
                *remaining -= 1;
                count.0 += 1;
            } else {
                count.1 += 1;
                refused.push(cap.evaluation);
            }
        }
        kept.extend(job.without(&refused));
    }
    let refused = counts.values().map(|(_, refused)| u64::from(*refused)).sum();
    let counts = counts
        .into_iter()
        .map(|((evaluation, hour), (granted, refused))| CapCount { evaluation, hour, granted, refused })
        .collect();
    Allocation { jobs: kept, counts, refused }
}

/// Reserves up to `count` judgements of `evaluation`'s cap `max` in `hour` inside `tx`
/// (the counter locked until it ends): as many as are left; with `count_refused` the rest
/// are counted as skipped. Returns how many were granted.
pub async fn reserve_in(
    tx: &mut dyn crate::unit_of_work::Transaction,
    project: ProjectId,
    (evaluation, max, hour): (EvaluationId, u32, DateTime<Utc>),
    count: u32,
    count_refused: bool,
) -> Result<u32, RepositoryError> {
    let counter = (evaluation, hour);
    let queued = tx.hourly_caps().lock_counters(project, &[counter]).await?;
    let already = queued.iter().find(|(c, _)| *c == counter).map_or(0, |(_, n)| *n);
    let granted = max.saturating_sub(already).min(count);
    let refused = if count_refused { count - granted } else { 0 };
    if granted > 0 || refused > 0 {
        tx.hourly_caps().add_to_counters(&[CapCount { evaluation, hour, granted, refused }]).await?;
    }
    Ok(granted)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;
    use crate::evaluation::MaxRunsPerHour;
    use crate::jobs::{JobId, JobKind};
    use crate::judge::{HourlyCap, JudgePayload};

    fn hour() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 4, 12, 0, 0).unwrap()
    }

    fn planned(evaluations: &[(EvaluationId, Option<i64>)]) -> PlannedJob {
        let generation = uuid::Uuid::now_v7();
        let payload = JudgePayload {
            generation,
            evaluations: evaluations.iter().map(|(e, _)| *e).collect(),
            generation_timestamp: hour(),
            manual: false,
        };
        PlannedJob {
            generation,
            job: NewJob {
                id: JobId(uuid::Uuid::now_v7()),
                project: ProjectId(1),
                kind: JobKind::Judge,
                unique_key: None,
                payload: serde_json::to_value(&payload).unwrap_or(json!({})),
                attachment: None,
                max_attempts: 3,
            },
            caps: evaluations
                .iter()
                .filter_map(|(evaluation, max)| {
                    Some(HourlyCap { evaluation: *evaluation, max: MaxRunsPerHour::parse((*max)?)?, hour: hour() })
                })
                .collect(),
        }
    }

    #[test]
    fn the_first_judgements_up_to_what_is_left_are_granted_and_the_rest_counted_as_refused() {
        let capped = EvaluationId::generate();
        let free = EvaluationId::generate();
        let jobs: Vec<PlannedJob> = (0..3).map(|_| planned(&[(capped, Some(5)), (free, None)])).collect();
        let caps = counters(&jobs);
        assert_eq!(caps, BTreeMap::from([((capped, hour()), 5)]));

        let allocation = allocate(jobs.iter().collect(), &caps, &[((capped, hour()), 4)]);

        assert_eq!(allocation.refused, 2);
        assert_eq!(allocation.counts, vec![CapCount { evaluation: capped, hour: hour(), granted: 1, refused: 2 }]);
        assert_eq!(allocation.jobs.len(), 3, "every job still judges the uncapped evaluation");
        let judged: Vec<usize> = allocation
            .jobs
            .iter()
            .map(|job| serde_json::from_value::<JudgePayload>(job.payload.clone()).unwrap().evaluations.len())
            .collect();
        assert_eq!(judged, vec![2, 1, 1]);
    }
}
