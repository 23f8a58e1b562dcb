//! Child processes, and the Ctrl-C / SIGTERM that should stop them, not us.
//!
//! Every child runs in its own process group, so a Ctrl-C in the terminal reaches xtask
//! alone. xtask passes it on to the child's whole group exactly once, waits for the child
//! to finish its own shutdown, and then still has the chance to stop PostgreSQL.

use std::ffi::OsString;
use std::fmt;
use std::process::{ExitStatus, Output, Stdio};

use anyhow::{Context, Result};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

/// A signal that asks xtask to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sig {
    Int,
    Term,
}

impl Sig {
    fn name(self) -> &'static str {
        match self {
            Sig::Int => "INT",
            Sig::Term => "TERM",
        }
    }

    /// The exit code of a process this signal ended: 128 + its number.
    pub fn exit_code(self) -> u8 {
        match self {
            Sig::Int => 130,
            Sig::Term => 143,
        }
    }
}

/// Error for "a signal arrived while we were not running a child": the caller unwinds,
/// its guards stop PostgreSQL, and `main` exits with [`Sig::exit_code`].
#[derive(Debug)]
pub struct Interrupted(pub Sig);

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "interrupted by SIG{}", self.0.name())
    }
}

impl std::error::Error for Interrupted {}

/// SIGINT and SIGTERM, queued. Once installed they no longer end xtask: every wait in
/// xtask looks at this queue instead.
pub struct Signals {
    queue: mpsc::UnboundedReceiver<Sig>,
}

impl Signals {
    /// Installs the handlers; call it before anything that needs cleaning up.
    pub fn install() -> Result<Self> {
        let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let (tx, queue) = mpsc::unbounded_channel();
        // A task of its own, so signals are taken in even while the main flow blocks on a
        // short synchronous command.
        tokio::spawn(async move {
            loop {
                let sig = tokio::select! {
                    Some(()) = int.recv() => Sig::Int,
                    Some(()) = term.recv() => Sig::Term,
                    else => break,
                };
                if tx.send(sig).is_err() {
                    break;
                }
            }
        });
        Ok(Self { queue })
    }

    /// Waits for the next signal.
    pub async fn recv(&mut self) -> Sig {
        match self.queue.recv().await {
            Some(sig) => sig,
            None => std::future::pending().await,
        }
    }

    /// Fails with [`Interrupted`] if a signal arrived since the last look.
    pub fn check(&mut self) -> Result<()> {
        match self.queue.try_recv() {
            Ok(sig) => Err(Interrupted(sig).into()),
            Err(_) => Ok(()),
        }
    }
}

/// Runs `cmd` to completion in its own process group; a signal to xtask meanwhile is
/// passed on to that group and the wait goes on (the child decides how to stop).
pub async fn run(cmd: &mut tokio::process::Command, signals: &mut Signals) -> Result<ExitStatus> {
    let program = cmd.as_std().get_program().to_string_lossy().into_owned();
    let mut child = cmd.process_group(0).spawn().with_context(|| format!("starting {program}"))?;
    let pid = child.id().context("the child has no process id")?;
    loop {
        tokio::select! {
            status = child.wait() => return status.with_context(|| format!("waiting for {program}")),
            sig = signals.recv() => forward(sig, pid),
        }
    }
}

/// Starts `cmd` in a process group of its own with stdout and stderr captured.
pub fn spawn_captured(cmd: &mut tokio::process::Command) -> Result<tokio::process::Child> {
    let program = cmd.as_std().get_program().to_string_lossy().into_owned();
    cmd.process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {program}"))
}

/// Like [`run`], but captures the child's stdout and stderr and returns them with its
/// status.
pub async fn output(cmd: &mut tokio::process::Command, signals: &mut Signals) -> Result<Output> {
    let program = cmd.as_std().get_program().to_string_lossy().into_owned();
    let child = spawn_captured(cmd)?;
    let pid = child.id().context("the child has no process id")?;
    let output = child.wait_with_output();
    tokio::pin!(output);
    loop {
        tokio::select! {
            out = &mut output => return out.with_context(|| format!("waiting for {program}")),
            sig = signals.recv() => forward(sig, pid),
        }
    }
}

/// Sends `sig` to the process group led by `pid`.
pub fn forward(sig: Sig, pid: u32) {
    // `kill` the command, because the libc call is `unsafe` and the workspace forbids that.
    let sent = std::process::Command::new("kill").args(["-s", sig.name(), "--", &format!("-{pid}")]).status();
    if !matches!(sent, Ok(status) if status.success()) {
        eprintln!("xtask: could not pass SIG{} on to process group {pid}", sig.name());
    }
}

/// Fails unless `status` is a success: with [`Interrupted`] when the child was ended by
/// SIGINT or SIGTERM (we forwarded a Ctrl-C), else naming `what` failed.
pub fn check_status(status: ExitStatus, what: &str) -> Result<()> {
    use std::os::unix::process::ExitStatusExt;
    match (status.success(), status.signal()) {
        (true, _) => Ok(()),
        (false, Some(2)) => Err(Interrupted(Sig::Int).into()),
        (false, Some(15)) => Err(Interrupted(Sig::Term).into()),
        (false, _) => anyhow::bail!("{what} failed ({status})"),
    }
}

/// The exit code to report for a child's `status`: its own, or 128 + the signal that
/// ended it.
pub fn exit_code(status: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code).unwrap_or(1),
        (None, Some(signal)) => u8::try_from(128 + signal).unwrap_or(1),
        (None, None) => 1,
    }
}

/// The `cargo` that runs xtask (cargo sets `CARGO`), else the one on `PATH`.
pub fn cargo_program() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// Whether xtask runs as root (PostgreSQL then has to run as the `postgres` user).
pub fn running_as_root() -> Result<bool> {
    let out = std::process::Command::new("id").arg("-u").output().context("running `id -u`")?;
    Ok(String::from_utf8_lossy(&out.stdout).trim() == "0")
}
