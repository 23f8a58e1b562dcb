//! The threads runs happen on. Each run (a batch, or one test run) gets a thread of its own,
//! so a runaway code holds up only its own batch; a thread that finished waits for the
//! next run instead of ending, so a busy worker does not start a thread per batch (a new
//! thread's allocator heap starts empty, and its first allocations fault pages in). At
//! most [`KEPT_THREADS`] wait.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use domain::code::CodeUnavailable;

/// The stack of a run's thread: several times what the interpreter's nesting bound needs,
/// so no code can overflow it.
pub const RUN_STACK_BYTES: usize = 8 * 1024 * 1024;

/// How many finished threads wait for runs; a thread finishing beyond that ends.
pub const KEPT_THREADS: usize = 4;

type Work = Box<dyn FnOnce() + Send>;

/// The waiting threads, each by the sender of its next work.
type Waiting = Mutex<Vec<Sender<Work>>>;

/// Runs work on threads of their own, kept for later runs.
#[derive(Clone)]
pub struct RunThreads {
    waiting: Arc<Waiting>,
    /// Called on a thread as it starts to wait (e.g. to give its allocator's free memory
    /// back); a waiting thread allocates nothing.
    on_wait: fn(),
    thread: fn() -> std::thread::Builder,
}

impl Default for RunThreads {
    fn default() -> Self {
        Self::new(|| {})
    }
}

impl std::fmt::Debug for RunThreads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let waiting = self.waiting.lock().map_or(0, |waiting| waiting.len());
        f.debug_struct("RunThreads").field("waiting", &waiting).finish_non_exhaustive()
    }
}

impl RunThreads {
    /// Threads that call `on_wait` as they start to wait.
    pub fn new(on_wait: fn()) -> Self {
        Self { waiting: Arc::default(), on_wait, thread: run_thread }
    }

    /// Runs `work` on a thread of its own without blocking the caller's executor; a thread
    /// that cannot be had is the server's want, not the code's.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, CodeUnavailable> {
        let (done, outcome) = tokio::sync::oneshot::channel();
        let mut work: Work = Box::new(move || {
            let _ = done.send(work());
        });
        loop {
            let next = self.waiting.lock().unwrap_or_else(PoisonError::into_inner).pop();
            let Some(thread) = next else { break };
            match thread.send(work) {
                Ok(()) => return answer(outcome).await,
                // Its thread ended (it panicked, which runs do not): try another.
                Err(mpsc::SendError(back)) => work = back,
            }
        }
        self.start(work)?;
        answer(outcome).await
    }

    fn start(&self, first: Work) -> Result<(), CodeUnavailable> {
        let (sender, receiver) = mpsc::channel();
        let waiting = Arc::downgrade(&self.waiting);
        let on_wait = self.on_wait;
        (self.thread)()
            .spawn(move || serve(first, &sender, &receiver, &waiting, on_wait))
            .map(drop)
            .map_err(|error| CodeUnavailable(format!("no thread to run it on ({error})")))
    }
}

fn run_thread() -> std::thread::Builder {
    std::thread::Builder::new().name("hog-run".into()).stack_size(RUN_STACK_BYTES)
}

/// A thread's life: its work, then each work it is sent while it waits. It ends when
/// [`KEPT_THREADS`] already wait, or when the [`RunThreads`] are gone.
fn serve(first: Work, sender: &Sender<Work>, receiver: &Receiver<Work>, waiting: &Weak<Waiting>, on_wait: fn()) {
    let mut work = first;
    loop {
        work();
        {
            let Some(waiting) = waiting.upgrade() else { return };
            let mut waiting = waiting.lock().unwrap_or_else(PoisonError::into_inner);
            if waiting.len() >= KEPT_THREADS {
                return;
            }
            waiting.push(sender.clone());
        }
        on_wait();
        // Ends when every sender is gone: the [`RunThreads`] were dropped.
        match receiver.recv() {
            Ok(next) => work = next,
            Err(mpsc::RecvError) => return,
        }
    }
}

async fn answer<T>(outcome: tokio::sync::oneshot::Receiver<T>) -> Result<T, CodeUnavailable> {
    outcome.await.map_err(|_| CodeUnavailable("its thread ended without an answer".into()))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::thread::ThreadId;
    use std::time::Duration;

    use super::*;

    /// Waits until `count` threads wait: a thread offers itself only after its answer is sent.
    async fn waiting_threads(threads: &RunThreads, count: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while threads.waiting.lock().unwrap().len() < count {
            assert!(std::time::Instant::now() < deadline, "{threads:?}, expected {count} waiting");
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn a_finished_thread_runs_the_next_work() {
        let threads = RunThreads::default();
        let first = threads.run(|| std::thread::current().id()).await.unwrap();
        waiting_threads(&threads, 1).await;
        let second = threads.run(|| std::thread::current().id()).await.unwrap();
        assert_eq!(first, second);
        assert_ne!(first, std::thread::current().id());
        assert_eq!(
            threads.run(|| std::thread::current().name().map(str::to_owned)).await.unwrap().as_deref(),
            Some("hog-run")
        );
    }

    #[tokio::test]
    async fn work_in_flight_gets_threads_of_its_own_and_a_few_stay() {
        let threads = RunThreads::default();
        // Eight runs at once, each waiting until all eight have started: none waits for
        // another's thread.
        let started = Arc::new(AtomicUsize::new(0));
        let runs: Vec<_> = (0..8)
            .map(|_| {
                let (threads, started) = (threads.clone(), Arc::clone(&started));
                tokio::spawn(async move {
                    threads
                        .run(move || {
                            started.fetch_add(1, Ordering::SeqCst);
                            let deadline = std::time::Instant::now() + Duration::from_secs(30);
                            while started.load(Ordering::SeqCst) < 8 {
                                assert!(std::time::Instant::now() < deadline, "the runs did not all start");
                                std::thread::yield_now();
                            }
                            std::thread::current().id()
                        })
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut ids: HashSet<ThreadId> = HashSet::new();
        for run in runs {
            ids.insert(run.await.unwrap());
        }
        assert_eq!(ids.len(), 8);
        waiting_threads(&threads, KEPT_THREADS).await;
        let kept = threads.run(|| std::thread::current().id()).await.unwrap();
        assert!(ids.contains(&kept), "a kept thread ran the next work");
    }

    #[tokio::test]
    async fn a_thread_calls_its_hook_as_it_starts_to_wait() {
        static WAITS: AtomicUsize = AtomicUsize::new(0);
        let threads = RunThreads::new(|| {
            WAITS.fetch_add(1, Ordering::SeqCst);
        });
        threads.run(|| ()).await.unwrap();
        threads.run(|| ()).await.unwrap();
        // The second wait begins after the second answer is sent: poll for it.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while WAITS.load(Ordering::SeqCst) < 2 {
            assert!(std::time::Instant::now() < deadline, "waited {} times", WAITS.load(Ordering::SeqCst));
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn a_thread_that_cannot_be_had_is_no_fault_of_the_code() {
        // A stack larger than the machine's memory: the kernel refuses the thread.
        let unobtainable =
            RunThreads { thread: || std::thread::Builder::new().stack_size(1 << 46), ..RunThreads::default() };
        let unavailable = unobtainable.run(|| 1).await.unwrap_err();
        assert!(unavailable.0.starts_with("no thread to run it on"), "{unavailable}");
        assert_eq!(RunThreads::default().run(|| 1).await, Ok(1));
    }
}
