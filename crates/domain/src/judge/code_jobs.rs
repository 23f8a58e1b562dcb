//! `judge_code` jobs, many at a time: the batch's generations read in one statement per
//! project, each evaluation's code compiled once and run on each of its generations, and
//! every result stored with every job's end in one transaction. A job listing an
//! evaluation that is no longer code is judged on its own, as a `judge` job is.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::service::JudgeService;
use super::{Generation, JudgePayload, KeyType, ResultEvent, result_event_id};
use crate::code::{BatchRun, CodeBatch, code_input, verdict_of_run};
use crate::evaluation::{Evaluation, EvaluationType, JudgeStop, StatusReason};
use crate::ingestion::IncomingEvent;
use crate::jobs::{ClaimedJob, JobEnd, JobId, JobOutcome, Lease};
use crate::unit_of_work::retried_once;
use crate::{EvaluationId, ProjectId, RepositoryError};

/// One job of the batch that is judged here.
struct CodeJob<'a> {
    index: usize,
    job: &'a ClaimedJob,
    payload: JudgePayload,
    /// The evaluations not judged by an earlier attempt, with their result ids.
    pending: Vec<(EvaluationId, Uuid)>,
}

/// What one job ends with: its results, and the failures of its evaluations.
#[derive(Default)]
struct Judged {
    results: Vec<IncomingEvent>,
    failures: Vec<(EvaluationId, String)>,
}

impl Judged {
    fn fail(&mut self, evaluation: EvaluationId, reason: impl Into<String>) {
        self.failures.push((evaluation, reason.into()));
    }

    /// The job's end: failed with the first failure (named by its evaluation when the job
    /// lists several), else complete.
    fn end(&self, several: bool) -> JobEnd {
        match self.failures.first() {
            None => JobEnd::Complete,
            Some((evaluation, reason)) if several => JobEnd::Fail(format!("evaluation {evaluation}: {reason}")),
            Some((_, reason)) => JobEnd::Fail(reason.clone()),
        }
    }
}

impl JudgeService {
    /// Judges a batch of `judge_code` jobs; one outcome per job, in their order.
    pub(super) async fn judge_code_jobs(&self, jobs: &[ClaimedJob]) -> Vec<JobOutcome> {
        let mut outcomes = vec![JobOutcome::Finished; jobs.len()];
        let mut batch = Vec::with_capacity(jobs.len());
        for (index, job) in jobs.iter().enumerate() {
            match serde_json::from_value::<JudgePayload>(job.payload.clone()) {
                Ok(payload) => {
                    let pending = payload
                        .evaluations
                        .iter()
                        .map(|e| (*e, result_event_id(&payload, *e, job.lease.job.0)))
                        .collect();
                    batch.push(CodeJob { index, job, payload, pending });
                }
                Err(error) => outcomes[index] = JobOutcome::Fail(format!("unreadable judge payload: {error}")),
            }
        }
        match self.judge_code_batch(batch, &mut outcomes).await {
            Ok(()) => outcomes,
            Err(error) => {
                let retry = JobOutcome::Retry(format!("storage failure: {}", error.0));
                outcomes.into_iter().map(|o| if o == JobOutcome::Finished { retry.clone() } else { o }).collect()
            }
        }
    }

    async fn judge_code_batch(
        &self,
        mut batch: Vec<CodeJob<'_>>,
        outcomes: &mut [JobOutcome],
    ) -> Result<(), RepositoryError> {
        self.drop_stored_results(&mut batch).await?;
        let evaluations = self.evaluations_of(&batch).await?;
        // A job naming an evaluation that is no longer code is judged as a `judge` job is.
        let (batch, others): (Vec<CodeJob>, Vec<CodeJob>) = batch.into_iter().partition(|job| {
            job.pending.iter().all(|(evaluation, _)| {
                evaluations
                    .get(&(job.job.project, *evaluation))
                    .and_then(Option::as_ref)
                    .is_none_or(|e| e.evaluation_type == EvaluationType::Hog)
            })
        });
        let each = others.iter().map(|job| async { (job.index, self.run_judge_job(job.job).await) });
        for (index, outcome) in futures::future::join_all(each).await {
            outcomes[index] = outcome;
        }

        let generations = self.generations_of(&batch).await?;
        let mut judged: Vec<Judged> = batch.iter().map(|_| Judged::default()).collect();
        let mut code = CodeBatch::default();
        let mut sources: HashMap<(ProjectId, EvaluationId), usize> = HashMap::new();
        let mut inputs: HashMap<(ProjectId, Uuid), usize> = HashMap::new();
        // (job in the batch, its evaluation) of each run, in the batch's order.
        let mut runs: Vec<(usize, &Evaluation, Uuid)> = Vec::new();
        for (at, job) in batch.iter().enumerate() {
            let project = job.job.project;
            for (evaluation_id, result_id) in &job.pending {
                let evaluation = match evaluations.get(&(project, *evaluation_id)).and_then(Option::as_ref) {
                    None => {
                        judged[at].fail(*evaluation_id, "the evaluation was deleted before it ran");
                        continue;
                    }
                    Some(e) if !job.payload.manual && !e.state.enabled() => {
                        judged[at].fail(*evaluation_id, "the evaluation was disabled before it ran");
                        continue;
                    }
                    Some(evaluation) => evaluation,
                };
                let Some(generation) = generations.get(&(project, job.payload.generation)) else {
                    judged[at].fail(*evaluation_id, "the generation is no longer stored");
                    continue;
                };
                let source = *sources.entry((project, evaluation.id)).or_insert_with(|| {
                    code.sources.push(evaluation.prompt.clone());
                    code.sources.len() - 1
                });
                let input = *inputs.entry((project, generation.uuid)).or_insert_with(|| {
                    code.inputs.push(code_input(generation));
                    code.inputs.len() - 1
                });
                code.runs.push((source, input));
                runs.push((at, evaluation, *result_id));
            }
        }

        let answers = if code.runs.is_empty() { Vec::new() } else { self.ports.code.run_batch(code).await };
        let mut stopped: HashSet<(ProjectId, EvaluationId)> = HashSet::new();
        for ((at, evaluation, result_id), answer) in runs.into_iter().zip(answers) {
            let job = &batch[at];
            let project = job.job.project;
            let generation = &generations[&(project, job.payload.generation)];
            match verdict_of(answer, evaluation) {
                Some(Ok(verdict)) => judged[at].results.push(
                    ResultEvent {
                        id: result_id,
                        evaluation,
                        generation,
                        verdict: &verdict,
                        key: KeyType::Code,
                        provider: "",
                        model: "",
                        manual: job.payload.manual,
                        at: chrono::Utc::now(),
                    }
                    .into_event(),
                ),
                Some(Err(message)) => {
                    if stopped.insert((project, evaluation.id)) {
                        let one = JudgeStop::One(evaluation.id);
                        self.stop_saying(project, one, StatusReason::HogError, Some(message.clone())).await?;
                    }
                    judged[at].fail(evaluation.id, message);
                }
                None => judged[at].fail(evaluation.id, "the evaluation was disabled before it ran"),
            }
        }

        let ends: Vec<(usize, &CodeJob, Judged)> =
            batch.iter().zip(judged).map(|(job, judged)| (job.index, job, judged)).collect();
        self.store_code_results(&ends).await?;
        for (index, job, judged) in &ends {
            if let JobEnd::Fail(reason) = judged.end(job.payload.evaluations.len() > 1) {
                tracing::warn!(job = %job.job.lease.job, project = %job.job.project, error = %reason, "job failed");
            }
            outcomes[*index] = JobOutcome::Finished;
        }
        Ok(())
    }

    /// A retried job skips the evaluations whose results an earlier attempt stored.
    async fn drop_stored_results(&self, batch: &mut [CodeJob<'_>]) -> Result<(), RepositoryError> {
        let mut retried: HashMap<ProjectId, Vec<Uuid>> = HashMap::new();
        for job in batch.iter().filter(|job| job.job.attempts > 1) {
            retried.entry(job.job.project).or_default().extend(job.pending.iter().map(|(_, id)| *id));
        }
        let mut stored = HashSet::new();
        for (project, ids) in retried {
            stored.extend(self.ports.store.stored_events(project, &ids).await?);
        }
        if !stored.is_empty() {
            for job in batch.iter_mut() {
                job.pending.retain(|(_, id)| !stored.contains(id));
            }
        }
        Ok(())
    }

    /// Each evaluation the batch names, read once (`None`: deleted).
    async fn evaluations_of(
        &self,
        batch: &[CodeJob<'_>],
    ) -> Result<HashMap<(ProjectId, EvaluationId), Option<Evaluation>>, RepositoryError> {
        let mut evaluations = HashMap::new();
        for job in batch {
            for (evaluation, _) in &job.pending {
                if let std::collections::hash_map::Entry::Vacant(entry) =
                    evaluations.entry((job.job.project, *evaluation))
                {
                    let found = self.ports.evaluations.find(job.job.project, *evaluation).await?.filter(|e| !e.deleted);
                    entry.insert(found);
                }
            }
        }
        Ok(evaluations)
    }

    /// The batch's generations, one read per project (within the span of their
    /// timestamps, so only their partitions are read).
    async fn generations_of(
        &self,
        batch: &[CodeJob<'_>],
    ) -> Result<HashMap<(ProjectId, Uuid), Generation>, RepositoryError> {
        let mut wanted: HashMap<ProjectId, (Vec<Uuid>, Vec<DateTime<Utc>>)> = HashMap::new();
        for job in batch.iter().filter(|job| !job.pending.is_empty()) {
            let (uuids, times) = wanted.entry(job.job.project).or_default();
            uuids.push(job.payload.generation);
            times.push(job.payload.generation_timestamp);
        }
        let mut generations = HashMap::new();
        for (project, (uuids, times)) in wanted {
            let (Some(first), Some(last)) = (times.iter().min(), times.iter().max()) else { continue };
            // A second either side: a timestamp sent with more precision than is stored.
            let within = (*first - chrono::Duration::seconds(1), *last + chrono::Duration::seconds(1));
            for generation in self.ports.store.events(project, &uuids, within).await? {
                generations.insert((project, generation.uuid), generation);
            }
        }
        Ok(generations)
    }

    /// Stores every result with every job's end, in one transaction, while each lease is
    /// still its job's; a job whose lease lapsed is left out (with its results) and the
    /// rest written again.
    async fn store_code_results(&self, ends: &[(usize, &CodeJob<'_>, Judged)]) -> Result<(), RepositoryError> {
        let mut held: Vec<&(usize, &CodeJob, Judged)> = ends.iter().collect();
        loop {
            let ended: Vec<JobId> = retried_once(|| async {
                let mut tx = self.ports.unit_of_work.begin().await?;
                let mut by_project: HashMap<ProjectId, Vec<IncomingEvent>> = HashMap::new();
                for (_, job, judged) in &held {
                    by_project.entry(job.job.project).or_default().extend(judged.results.iter().cloned());
                }
                for (project, results) in by_project.iter().filter(|(_, results)| !results.is_empty()) {
                    tx.events().insert(*project, results).await?;
                }
                let job_ends: Vec<(Lease, JobEnd)> = held
                    .iter()
                    .map(|(_, job, judged)| (job.job.lease, judged.end(job.payload.evaluations.len() > 1)))
                    .collect();
                let ended = tx.jobs().end_each(&job_ends).await?;
                if ended.len() == job_ends.len() {
                    tx.commit().await?;
                }
                Ok(ended)
            })
            .await?;
            if ended.len() == held.len() {
                return Ok(());
            }
            tracing::warn!(lapsed = held.len() - ended.len(), "judge_code jobs lost their leases before their end");
            held.retain(|(_, job, _)| ended.contains(&job.job.lease.job));
            if held.is_empty() {
                return Ok(());
            }
        }
    }
}

/// A run's verdict, or why there is none (`None`: not run, its evaluation stopped at an
/// earlier error).
fn verdict_of(answer: BatchRun, evaluation: &Evaluation) -> Option<Result<super::prompt::Verdict, String>> {
    Some(match answer? {
        Ok(run) => verdict_of_run(&run, evaluation.output_type).map_err(|e| e.to_string()),
        Err(failure) => Err(failure.to_string()),
    })
}
