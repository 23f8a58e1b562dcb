//! `judge_code` jobs, many at a time. A job holds the code-judged generations of one
//! stored batch ([`super::gather_code_jobs`]); the worker hands several jobs over at once.
//! Their generations are read in one statement per project, each evaluation's code is
//! compiled once and run on each of its generations, and every result is stored with
//! every job's end in one transaction.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::attached::attached_generations;
use super::service::JudgeService;
use super::{CodeJudgePayload, Generation, JudgePayload, KeyType, ResultEvent, code_result_event_id};
use crate::code::{
    BatchRun, CodeBatch, CodeReads, CodeUnavailable, StoredTexts, code_input_taking_with, verdict_of_run,
};
use crate::evaluation::{Evaluation, EvaluationType, JudgeStop, StatusReason};
use crate::ingestion::IncomingEvent;
use crate::jobs::{ClaimedJob, JobEnd, JobId, JobOutcome, Lease};
use crate::unit_of_work::retried_once;
use crate::{EvaluationId, ProjectId, RepositoryError};

/// One generation of a job, with the evaluations of it still to judge.
struct Unit<'a> {
    /// Its job's place in the batch.
    job: usize,
    claimed: &'a ClaimedJob,
    payload: JudgePayload,
    /// The evaluations not judged by an earlier attempt, with their result ids.
    pending: Vec<(EvaluationId, Uuid)>,
    /// Whether its job holds other generations (failures then name this one).
    shared: bool,
}

impl Unit<'_> {
    /// A failure as the job keeps it: naming the generation and the evaluation when the
    /// job holds more than one of either.
    fn said(&self, evaluation: EvaluationId, reason: &str) -> String {
        if self.shared {
            format!("generation {}, evaluation {evaluation}: {reason}", self.payload.generation)
        } else if self.payload.evaluations.len() > 1 {
            format!("evaluation {evaluation}: {reason}")
        } else {
            reason.to_owned()
        }
    }
}

/// A batch's generations by project and uuid, with the `input` and `output` texts of
/// those its jobs carry.
type BatchGenerations = (HashMap<(ProjectId, Uuid), Generation>, HashMap<(ProjectId, Uuid), StoredTexts>);

/// The generations still to judge that the units' jobs carry as attachments, as far as
/// code that `reads` them sees; a job whose attachment does not read has its generations
/// read instead.
fn carried_generations(units: &[Unit<'_>], reads: &CodeReads) -> BatchGenerations {
    let needed: HashSet<(ProjectId, Uuid)> = units
        .iter()
        .filter(|unit| !unit.pending.is_empty())
        .map(|unit| (unit.claimed.project, unit.payload.generation))
        .collect();
    let (mut found, mut texts) = (HashMap::new(), HashMap::new());
    let mut jobs_read = HashSet::new();
    for unit in units {
        let Some(text) = unit.claimed.attachment.as_deref() else { continue };
        if !jobs_read.insert(unit.job) {
            continue;
        }
        match attached_generations(text, reads) {
            Ok(generations) => {
                for carried in generations {
                    let key = (unit.claimed.project, carried.generation.uuid);
                    if needed.contains(&key) {
                        found.insert(key, carried.generation);
                        texts.insert(key, carried.texts);
                    }
                }
            }
            Err(error) => {
                tracing::warn!(job = %unit.claimed.lease.job, %error, "unreadable attachment: its generations are read");
            }
        }
    }
    (found, texts)
}

/// What one job ends with: its results, and the failures of its judgements.
#[derive(Default)]
struct Judged {
    results: Vec<IncomingEvent>,
    failures: Vec<String>,
}

impl Judged {
    fn fail(&mut self, unit: &Unit, evaluation: EvaluationId, reason: &str) {
        self.failures.push(unit.said(evaluation, reason));
    }

    /// The job's end: failed with its first failure, else complete.
    fn end(&self) -> JobEnd {
        self.failures.first().map_or(JobEnd::Complete, |reason| JobEnd::Fail(reason.clone()))
    }
}

/// Why a batch of jobs stopped before its end was stored: each of its jobs is tried again.
#[derive(Debug, thiserror::Error)]
enum Interrupted {
    #[error("storage failure: {}", .0.0)]
    Storage(#[from] RepositoryError),
    #[error(transparent)]
    CodeUnavailable(#[from] CodeUnavailable),
}

impl JudgeService {
    /// Judges a batch of `judge_code` jobs; one outcome per job, in their order.
    pub(super) async fn judge_code_jobs(&self, jobs: &[ClaimedJob]) -> Vec<JobOutcome> {
        let mut outcomes = vec![JobOutcome::Finished; jobs.len()];
        let mut units = Vec::new();
        let mut readable = Vec::with_capacity(jobs.len());
        for (index, claimed) in jobs.iter().enumerate() {
            match CodeJudgePayload::read(&claimed.payload) {
                Ok(generations) => {
                    readable.push(index);
                    let shared = generations.len() > 1;
                    for payload in generations {
                        let pending = payload
                            .evaluations
                            .iter()
                            .map(|e| (*e, code_result_event_id(&payload, *e, claimed.lease.job.0)))
                            .collect();
                        units.push(Unit { job: index, claimed, payload, pending, shared });
                    }
                }
                Err(error) => outcomes[index] = JobOutcome::Fail(format!("unreadable judge payload: {error}")),
            }
        }
        if let Err(interrupted) = self.judge_units(jobs, &readable, units).await {
            let retry = JobOutcome::Retry(interrupted.to_string());
            for index in readable {
                outcomes[index] = retry.clone();
            }
        }
        outcomes
    }

    async fn judge_units(
        &self,
        jobs: &[ClaimedJob],
        readable: &[usize],
        mut units: Vec<Unit<'_>>,
    ) -> Result<(), Interrupted> {
        self.drop_stored_results(&mut units).await?;
        let evaluations = self.evaluations_of(&units).await?;
        let reads = evaluations
            .values()
            .flatten()
            .filter(|evaluation| evaluation.evaluation_type == EvaluationType::Hog)
            .fold(CodeReads::nothing(), |reads, evaluation| reads.union(self.ports.code.reads(&evaluation.prompt)));
        let (mut generations, mut texts) = self.generations_of(&units, &reads).await?;
        let mut judged: HashMap<usize, Judged> = readable.iter().map(|index| (*index, Judged::default())).collect();
        let mut code = CodeBatch::default();
        let mut sources: HashMap<(ProjectId, EvaluationId), usize> = HashMap::new();
        let mut inputs: HashMap<(ProjectId, Uuid), usize> = HashMap::new();
        // (unit, its evaluation, the result's id) of each run, in the batch's order.
        let mut runs: Vec<(&Unit, &Evaluation, Uuid)> = Vec::new();
        for unit in &units {
            let project = unit.claimed.project;
            let Some(job) = judged.get_mut(&unit.job) else { continue };
            for (evaluation_id, result_id) in &unit.pending {
                let evaluation = match evaluations.get(&(project, *evaluation_id)).and_then(Option::as_ref) {
                    None => {
                        job.fail(unit, *evaluation_id, "the evaluation was deleted before it ran");
                        continue;
                    }
                    Some(e) if !unit.payload.manual && !e.state.enabled() => {
                        job.fail(unit, *evaluation_id, "the evaluation was disabled before it ran");
                        continue;
                    }
                    Some(e) if e.evaluation_type != EvaluationType::Hog => {
                        job.fail(unit, *evaluation_id, "the evaluation is no longer a code evaluator");
                        continue;
                    }
                    Some(evaluation) => evaluation,
                };
                let Some(generation) = generations.get_mut(&(project, unit.payload.generation)) else {
                    job.fail(unit, *evaluation_id, "the generation is no longer stored");
                    continue;
                };
                let source = *sources.entry((project, evaluation.id)).or_insert_with(|| {
                    code.sources.push(evaluation.prompt.clone());
                    code.sources.len() - 1
                });
                let input = *inputs.entry((project, generation.uuid)).or_insert_with(|| {
                    let stored = texts.remove(&(project, generation.uuid)).unwrap_or_default();
                    code.inputs.push(code_input_taking_with(generation, stored));
                    code.inputs.len() - 1
                });
                code.runs.push((source, input));
                runs.push((unit, evaluation, *result_id));
            }
        }

        let answers = if code.runs.is_empty() { Vec::new() } else { self.ports.code.run_batch(code).await? };
        let mut stopped: HashSet<(ProjectId, EvaluationId)> = HashSet::new();
        for ((unit, evaluation, result_id), answer) in runs.into_iter().zip(answers) {
            let project = unit.claimed.project;
            let generation = &generations[&(project, unit.payload.generation)];
            let Some(job) = judged.get_mut(&unit.job) else { continue };
            match verdict_of(answer, evaluation) {
                Some(Ok(verdict)) => job.results.push(
                    ResultEvent {
                        id: result_id,
                        evaluation,
                        generation,
                        verdict: &verdict,
                        key: KeyType::Code,
                        provider: "",
                        model: "",
                        manual: unit.payload.manual,
                        at: Utc::now(),
                    }
                    .into_event(),
                ),
                Some(Err(message)) => {
                    if stopped.insert((project, evaluation.id)) {
                        let one = JudgeStop::One(evaluation.id);
                        self.stop_saying(project, one, StatusReason::HogError, Some(message.clone())).await?;
                    }
                    job.fail(unit, evaluation.id, &message);
                }
                None => job.fail(unit, evaluation.id, "the evaluation was disabled before it ran"),
            }
        }

        let mut ends: Vec<(&ClaimedJob, Judged)> =
            readable.iter().map(|index| (&jobs[*index], judged.remove(index).unwrap_or_default())).collect();
        self.store_code_results(ResultsToStore::moved_from(&mut ends)).await?;
        for (claimed, judged) in &ends {
            if let JobEnd::Fail(reason) = judged.end() {
                tracing::warn!(job = %claimed.lease.job, project = %claimed.project, error = %reason, "job failed");
            }
        }
        Ok(())
    }

    /// A retried job skips the evaluations whose results an earlier attempt stored.
    async fn drop_stored_results(&self, units: &mut [Unit<'_>]) -> Result<(), RepositoryError> {
        let mut retried: HashMap<ProjectId, Vec<Uuid>> = HashMap::new();
        for unit in units.iter().filter(|unit| unit.claimed.attempts > 1) {
            retried.entry(unit.claimed.project).or_default().extend(unit.pending.iter().map(|(_, id)| *id));
        }
        let mut stored = HashSet::new();
        for (project, ids) in retried {
            stored.extend(self.ports.store.stored_events(project, &ids).await?);
        }
        if !stored.is_empty() {
            for unit in units.iter_mut() {
                unit.pending.retain(|(_, id)| !stored.contains(id));
            }
        }
        Ok(())
    }

    /// Each evaluation the batch names, read once (`None`: deleted).
    async fn evaluations_of(
        &self,
        units: &[Unit<'_>],
    ) -> Result<HashMap<(ProjectId, EvaluationId), Option<Evaluation>>, RepositoryError> {
        let mut evaluations = HashMap::new();
        for unit in units {
            let project = unit.claimed.project;
            for (evaluation, _) in &unit.pending {
                if let std::collections::hash_map::Entry::Vacant(entry) = evaluations.entry((project, *evaluation)) {
                    let found = self.ports.evaluations.find(project, *evaluation).await?.filter(|e| !e.deleted);
                    entry.insert(found);
                }
            }
        }
        Ok(evaluations)
    }

    /// The batch's generations: those its jobs carry ([`attached_generations`], with their
    /// texts, as far as code that `reads` them sees), the others read, one read per
    /// project, each by its uuid and timestamp (so each is one index probe in its own
    /// partition).
    async fn generations_of(&self, units: &[Unit<'_>], reads: &CodeReads) -> Result<BatchGenerations, RepositoryError> {
        let (mut generations, texts) = carried_generations(units, reads);
        let mut wanted: HashMap<ProjectId, Vec<(Uuid, DateTime<Utc>)>> = HashMap::new();
        let mut seen = HashSet::new();
        for unit in units.iter().filter(|unit| !unit.pending.is_empty()) {
            let key = (unit.claimed.project, unit.payload.generation);
            if !generations.contains_key(&key) && seen.insert(key) {
                let generation = (unit.payload.generation, unit.payload.generation_timestamp);
                wanted.entry(unit.claimed.project).or_default().push(generation);
            }
        }
        for (project, wanted) in wanted {
            for generation in self.ports.store.events(project, &wanted).await? {
                generations.insert((project, generation.uuid), generation);
            }
        }
        Ok((generations, texts))
    }

    /// Stores every result with every job's end, in one transaction, while each lease is
    /// still its job's; a job whose lease lapsed is left out (with its results) and the
    /// rest written again.
    async fn store_code_results(&self, mut held: ResultsToStore) -> Result<(), RepositoryError> {
        loop {
            let ended: Vec<JobId> = retried_once(|| async {
                let mut tx = self.ports.unit_of_work.begin().await?;
                // New but for a lapsed lease's earlier holder storing the same results at
                // once (a retried job drops those stored before it): a duplicate costs this
                // transaction, whose retry skips existing ones.
                for (project, results) in held.by_project.iter().filter(|(_, results)| !results.is_empty()) {
                    tx.events().insert_fresh(*project, results).await?;
                }
                let ended = tx.jobs().end_each(&held.ends).await?;
                if ended.len() == held.ends.len() {
                    tx.commit().await?;
                }
                Ok(ended)
            })
            .await?;
            if ended.len() == held.ends.len() {
                return Ok(());
            }
            tracing::warn!(
                lapsed = held.ends.len() - ended.len(),
                "judge_code jobs lost their leases before their end"
            );
            held = held.of_jobs(&ended);
            if held.ends.is_empty() {
                return Ok(());
            }
        }
    }
}

/// A batch's results to store, one list a project, with its jobs' ends.
struct ResultsToStore {
    by_project: HashMap<ProjectId, Vec<IncomingEvent>>,
    /// Each job's lease and end.
    ends: Vec<(Lease, JobEnd)>,
    /// Where each job's results are (its project's list, a range of it), in `ends`' order.
    places: Vec<(ProjectId, Range<usize>)>,
}

impl ResultsToStore {
    /// The jobs' results, moved out of them (the jobs keep their failures).
    fn moved_from(jobs: &mut [(&ClaimedJob, Judged)]) -> Self {
        let mut held = Self { by_project: HashMap::new(), ends: Vec::new(), places: Vec::new() };
        for (claimed, judged) in jobs {
            held.ends.push((claimed.lease, judged.end()));
            let list = held.by_project.entry(claimed.project).or_default();
            let start = list.len();
            list.append(&mut judged.results);
            held.places.push((claimed.project, start..list.len()));
        }
        held
    }

    /// Only the jobs in `kept`, with their results (copied: a lease lapses rarely).
    fn of_jobs(&self, kept: &[JobId]) -> Self {
        let mut held = Self { by_project: HashMap::new(), ends: Vec::new(), places: Vec::new() };
        for ((lease, end), (project, place)) in self.ends.iter().zip(&self.places) {
            if kept.contains(&lease.job) {
                held.ends.push((*lease, end.clone()));
                let list = held.by_project.entry(*project).or_default();
                let start = list.len();
                list.extend_from_slice(&self.by_project[project][place.clone()]);
                held.places.push((*project, start..list.len()));
            }
        }
        held
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

#[cfg(test)]
mod tests {
    use serde_json::Map;

    use super::*;
    use crate::ingestion::AiEventName;

    fn job(n: u128, project: i64) -> ClaimedJob {
        ClaimedJob {
            lease: Lease { job: JobId(Uuid::from_u128(n)), token: Uuid::from_u128(100 + n) },
            project: ProjectId(project),
            kind: None,
            payload: serde_json::Value::Null,
            attachment: None,
            attempts: 1,
            max_attempts: 3,
        }
    }

    fn judged(results: &[u128], failure: Option<&str>) -> Judged {
        let result = |n: &u128| IncomingEvent {
            uuid: Uuid::from_u128(*n),
            event: AiEventName::parse(AiEventName::EVALUATION).unwrap(),
            distinct_id: "u".into(),
            timestamp: Utc::now(),
            properties: Map::new(),
        };
        Judged {
            results: results.iter().map(result).collect(),
            failures: failure.into_iter().map(Into::into).collect(),
        }
    }

    fn uuids(held: &ResultsToStore, project: i64) -> Vec<u128> {
        held.by_project
            .get(&ProjectId(project))
            .map_or(Vec::new(), |list| list.iter().map(|e| e.uuid.as_u128()).collect())
    }

    #[test]
    fn results_are_moved_into_one_list_a_project_and_a_lapsed_job_takes_its_own_out() {
        let (first, second, third) = (job(1, 7), job(2, 8), job(3, 7));
        let mut jobs = vec![
            (&first, judged(&[11, 12], None)),
            (&second, judged(&[21], Some("the evaluation was deleted before it ran"))),
            (&third, judged(&[31, 32], None)),
        ];
        let held = ResultsToStore::moved_from(&mut jobs);
        assert!(jobs.iter().all(|(_, judged)| judged.results.is_empty()), "moved, not copied");
        assert_eq!((uuids(&held, 7), uuids(&held, 8)), (vec![11, 12, 31, 32], vec![21]));
        let ends: Vec<JobEnd> = held.ends.iter().map(|(_, end)| end.clone()).collect();
        assert_eq!(
            ends,
            [JobEnd::Complete, JobEnd::Fail("the evaluation was deleted before it ran".into()), JobEnd::Complete]
        );

        let without_first = held.of_jobs(&[second.lease.job, third.lease.job]);
        assert_eq!((uuids(&without_first, 7), uuids(&without_first, 8)), (vec![31, 32], vec![21]));
        let leases: Vec<Lease> = without_first.ends.iter().map(|(lease, _)| *lease).collect();
        assert_eq!(leases, [second.lease, third.lease]);
        let only_third = without_first.of_jobs(&[third.lease.job]);
        assert_eq!((uuids(&only_third, 7), uuids(&only_third, 8)), (vec![31, 32], vec![]));
    }
}
