//! The one closed-loop load every HTTP measurement uses: N workers, each sending its next
//! request as soon as the last one answered, for the warm-up and then the measured window.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::BenchArgs;
use super::report::LoadResult;

/// What a closed loop measured.
pub(super) struct ClosedLoop {
    pub(super) result: LoadResult,
    /// When a worker had nothing more to send, from the start of the measured window (the
    /// window ends there).
    pub(super) ran_dry_after: Option<Duration>,
}

/// Runs `workers` tasks for `args.warmup` + `args.seconds`; each calls `request(worker,
/// iteration)` back to back. What the call does before it returns its future (building a
/// body) is not timed; the future (sending, reading the answer) is, and its `Ok(items)`
/// or `Err(why)` is recorded when it finishes inside the measured window. `None` from
/// `request` means nothing is left to send: that worker stops, and the window ends there.
pub(super) async fn closed_loop<Request, Answer>(workers: u64, args: &BenchArgs, request: Request) -> Result<ClosedLoop>
where
    Request: Fn(u64, u64) -> Option<Answer> + Clone + Send + Sync + 'static,
    Answer: Future<Output = Result<u64, String>> + Send + 'static,
{
    let measure_from = Instant::now() + Duration::from_secs(args.warmup);
    let measure_until = measure_from + Duration::from_secs(args.seconds);
    let tasks: Vec<_> = (0..workers)
        .map(|worker| {
            let request = request.clone();
            tokio::spawn(async move {
                let mut part = LoadResult::empty(Duration::ZERO);
                let mut dry_at = None;
                for iteration in 0.. {
                    let answer = request(worker, iteration);
                    let started = Instant::now();
                    if started >= measure_until {
                        break;
                    }
                    let Some(answer) = answer else {
                        dry_at = Some(started);
                        break;
                    };
                    let outcome = answer.await;
                    let finished = Instant::now();
                    if finished >= measure_from && finished < measure_until {
                        part.record(outcome, started, finished);
                    }
                }
                (part, dry_at)
            })
        })
        .collect();
    let mut parts = Vec::with_capacity(tasks.len());
    for task in tasks {
        parts.push(task.await.context("a load task failed")?);
    }
    let dry_at = parts.iter().filter_map(|(_, at)| *at).min();
    let end = dry_at.map_or(measure_until, |at| at.clamp(measure_from, measure_until));
    let mut result = LoadResult::empty(end.saturating_duration_since(measure_from).max(Duration::from_millis(1)));
    for (part, _) in parts {
        result.merge(part);
    }
    Ok(ClosedLoop { result, ran_dry_after: dry_at.map(|at| at.saturating_duration_since(measure_from)) })
}

/// A response's body when its status is 200, else the status and body as the error.
pub(super) async fn ok_body(sent: reqwest::Result<reqwest::Response>) -> Result<Vec<u8>, String> {
    let response = sent.map_err(|error| format!("{error:#}"))?;
    let status = response.status();
    match response.bytes().await {
        Ok(body) if status == reqwest::StatusCode::OK => Ok(body.to_vec()),
        Ok(body) => Err(format!("{status}: {}", String::from_utf8_lossy(&body))),
        Err(error) => Err(format!("{status}, reading the body: {error}")),
    }
}
