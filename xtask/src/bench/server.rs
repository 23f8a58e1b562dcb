//! The server side of the bench: `llm-analytics serve` as a child process, the fake
//! OpenAI its provider-key checks talk to, and the HTTP client of the loads.

use std::net::SocketAddr;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::process::{self, Interrupted, Sig, Signals};

/// How long the server may take to print its address.
const START_DEADLINE: Duration = Duration::from_secs(60);
/// How long the server may take to finish after SIGTERM.
const STOP_DEADLINE: Duration = Duration::from_secs(30);

/// A fresh `LLMA_ENCRYPTION_KEYS` value for this run.
pub(super) fn encryption_keys() -> String {
    let mut secret = [0u8; 32];
    rand::fill(&mut secret);
    format!("bench1:{}", base64::engine::general_purpose::STANDARD.encode(secret))
}

/// The answer of every request to the fake OpenAI but chat completions: an empty model list.
const MODELS_RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 27\r\n\
connection: close\r\n\r\n{\"object\":\"list\",\"data\":[]}";

/// A stand-in for `https://api.openai.com`: the live check of a new provider key
/// (`GET models`) and the summary's `POST chat/completions` (answered with
/// [`FakeOpenai::set_chat_content`]'s content, at once).
pub(super) struct FakeOpenai {
    pub(super) address: SocketAddr,
    /// The full HTTP answer to a chat completion.
    chat_response: Arc<RwLock<Arc<[u8]>>>,
    /// Chat completions answered so far.
    chat_requests: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl FakeOpenai {
    pub(super) async fn start() -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await.context("binding the fake OpenAI")?;
        let address = listener.local_addr()?;
        let chat_response: Arc<RwLock<Arc<[u8]>>> = Arc::new(RwLock::new(chat_response("{}").into()));
        let chat_requests = Arc::new(AtomicU64::new(0));
        let (chat, count) = (chat_response.clone(), chat_requests.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (chat, count) = (chat.clone(), count.clone());
                tokio::spawn(async move {
                    // Read the request head (and a chat request's body) first, so closing
                    // does not reset the connection.
                    let mut request = Vec::new();
                    let mut buf = [0u8; 16 * 1024];
                    let head_end = loop {
                        if let Some(at) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                            break at + 4;
                        }
                        if request.len() >= 64 * 1024 {
                            return;
                        }
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&request[..head_end]).to_ascii_lowercase();
                    let is_chat = head.lines().next().is_some_and(|line| line.contains("/chat/completions"));
                    if !is_chat {
                        let _ = stream.write_all(MODELS_RESPONSE).await;
                        let _ = stream.shutdown().await;
                        return;
                    }
                    let length = head
                        .lines()
                        .find_map(|line| line.strip_prefix("content-length:"))
                        .and_then(|value| value.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    while request.len() < head_end + length {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    count.fetch_add(1, Ordering::Relaxed);
                    let answer = chat.read().map(|answer| answer.clone()).unwrap_or_else(|e| e.into_inner().clone());
                    let _ = stream.write_all(&answer).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Ok(Self { address, chat_response, chat_requests, task })
    }

    /// What every later chat completion answers: `content` (the model's message, a JSON
    /// text for structured output) in an OpenAI chat-completion body.
    pub(super) fn set_chat_content(&self, content: &str) {
        let response: Arc<[u8]> = chat_response(content).into();
        match self.chat_response.write() {
            Ok(mut slot) => *slot = response,
            Err(poisoned) => *poisoned.into_inner() = response,
        }
    }

    /// Chat completions answered so far.
    pub(super) fn chat_requests(&self) -> u64 {
        self.chat_requests.load(Ordering::Relaxed)
    }

    pub(super) fn stop(self) {
        self.task.abort();
    }
}

/// The HTTP answer to a chat completion whose message is `content`.
fn chat_response(content: &str) -> Vec<u8> {
    let body = serde_json::json!({
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "model": "gpt-4.1-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100}
    })
    .to_string();
    let mut response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(body.as_bytes());
    response
}

/// `llm-analytics serve`, stopped with SIGTERM when dropped.
pub(super) struct RunningServer {
    child: tokio::process::Child,
    pub(super) pid: u32,
    pub(super) base_url: String,
}

impl RunningServer {
    /// Starts `serve` in its own process group and waits for its `listening on` line.
    pub(super) async fn start(mut serve: tokio::process::Command, signals: &mut Signals) -> Result<Self> {
        serve.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit()).process_group(0);
        let mut child = serve.spawn().context("starting `llm-analytics serve`")?;
        let pid = child.id().context("the server has no process id")?;
        let stdout = child.stdout.take().context("the server's stdout is not piped")?;
        let mut server = Self { child, pid, base_url: String::new() };
        let mut lines = BufReader::new(stdout).lines();
        let deadline = tokio::time::sleep(START_DEADLINE);
        tokio::pin!(deadline);
        loop {
            let line = tokio::select! {
                line = lines.next_line() => line.context("reading the server's stdout")?,
                status = server.child.wait() => bail!("`llm-analytics serve` exited while starting ({})", status?),
                () = &mut deadline => bail!("`llm-analytics serve` printed no address within {START_DEADLINE:?}"),
                sig = signals.recv() => return Err(Interrupted(sig).into()),
            };
            let Some(line) = line else {
                bail!("`llm-analytics serve` closed its stdout without printing its address");
            };
            if let Some(url) = line.trim().strip_prefix("llm-analytics listening on ") {
                server.base_url = url.trim_end_matches('/').to_owned();
                break;
            }
            // A `serve --worker-only` process has no address.
            if line.trim() == "llm-analytics worker running" {
                break;
            }
        }
        // Keep reading, so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(server)
    }

    /// Sends SIGTERM and waits for the server to finish (SIGKILL after [`STOP_DEADLINE`]).
    pub(super) async fn stop(&mut self) -> Result<ExitStatus> {
        if let Some(status) = self.child.try_wait()? {
            return Ok(status);
        }
        process::forward(Sig::Term, self.pid);
        match tokio::time::timeout(STOP_DEADLINE, self.child.wait()).await {
            Ok(status) => Ok(status?),
            Err(_) => {
                eprintln!("xtask: the server did not stop within {STOP_DEADLINE:?} of SIGTERM; killing it");
                self.child.kill().await?;
                Ok(self.child.wait().await?)
            }
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        process::forward(Sig::Term, self.pid);
        let deadline = Instant::now() + STOP_DEADLINE;
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("xtask: the server did not stop within {STOP_DEADLINE:?} of SIGTERM; killing it");
        let _ = self.child.start_kill();
    }
}

/// One keep-alive client whose pool holds a connection per load task.
pub(super) fn http_client(connections: u64) -> Result<reqwest::Client> {
    // reqwest is built with `rustls-no-provider`; plain http needs none, but building a
    // client wants one installed. It fails harmlessly when one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(usize::try_from(connections)?)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(60))
        .build()
        .context("building the HTTP client")
}

/// The peak resident set size (`VmHWM`) of process `pid`, in KiB.
pub(super) fn peak_rss_kib(pid: u32) -> Result<u64> {
    status_kib(pid, "VmHWM")
}

/// The resident set size now (`VmRSS`) of process `pid`, in KiB.
pub(super) fn current_rss_kib(pid: u32) -> Result<u64> {
    status_kib(pid, "VmRSS")
}

/// A `kB` field of `/proc/{pid}/status`.
fn status_kib(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .with_context(|| format!("no {field} line"))?;
    let kib = line.trim().trim_end_matches("kB").trim();
    kib.parse().with_context(|| format!("{field} is `{line}`"))
}
