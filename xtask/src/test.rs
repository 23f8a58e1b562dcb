//! `cargo xtask test`: every test of the workspace against a throwaway PostgreSQL.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::postgres::{Durability, LocalPostgres, PgBinaries, free_port};
use crate::process::{self, Signals};

/// The variable that tells tests where the throwaway cluster is (read by `test-support`).
const TEST_DATABASE_URL: &str = "LLMA_TEST_DATABASE_URL";
/// The variable that tells tests how to restart that cluster: the words of the command,
/// one per line (read by `test-support`).
const TEST_DATABASE_RESTART: &str = "LLMA_TEST_DATABASE_RESTART";

/// Starts a cluster in a fresh folder under /tmp, runs `cargo test` with `extra` args,
/// stops the cluster, deletes the folder, and returns cargo's exit code.
pub async fn run(root: &Path, extra: &[String], signals: &mut Signals) -> Result<u8> {
    let bin = PgBinaries::find()?;
    let provisioned = crate::provision::provision(root, &bin, selects_black_box_tests(extra))?;
    let dir = TempDir::create("llma-test")?;
    let mut pg =
        LocalPostgres::new(bin, dir.path().join("data"), dir.path().join("postgres.log"), Durability::Throwaway);
    pg.init()?;
    signals.check()?;
    pg.start(free_port()?, signals).await?;
    let url = pg.url("postgres");
    eprintln!("xtask: throwaway PostgreSQL at {url} (in {})", dir.path().display());

    let mut status = 0;
    let mut tally = Tally::default();
    for args in cargo_test_runs(extra) {
        eprintln!("xtask: cargo {}", args.join(" "));
        let mut cargo = tokio::process::Command::new(process::cargo_program());
        cargo
            .args(&args)
            .current_dir(root)
            .env(TEST_DATABASE_URL, &url)
            .env(TEST_DATABASE_RESTART, pg.restart_command().join("\n"))
            .envs(provisioned.env.iter().map(|(name, value)| (*name, value.as_str())))
            // Tests reach PostgreSQL through the variable above only, never a developer's
            // own database; and sqlx's query macros read the committed `.sqlx/` data.
            .env_remove("DATABASE_URL");
        if std::env::var_os("SQLX_OFFLINE").is_none() {
            cargo.env("SQLX_OFFLINE", "true");
        }
        status = process::exit_code(run_counting(&mut cargo, signals, &mut tally).await?);
        if status != 0 {
            break;
        }
    }

    pg.stop()?;
    drop(dir);
    // cargo ends on the summary of whichever binary ran last, often one without tests; this
    // line totals them all, so a reader (or CI) sees what the whole run did.
    println!("{}", tally.summary_for(status));
    Ok(status)
}

/// The package whose black-box tests drive real clients (Python SDKs, Chromium, pg_dump).
const BLACK_BOX_PACKAGE: &str = "llm-analytics";

/// Whether cargo's part of `extra` selects the black-box tests: no package choice or one
/// naming their package, and no target choice or one that includes integration tests.
fn selects_black_box_tests(extra: &[String]) -> bool {
    let cargo_args: Vec<&str> = extra.iter().map(String::as_str).take_while(|arg| *arg != "--").collect();
    let values_of = |names: &[&str]| -> Vec<String> {
        let mut values = Vec::new();
        for (n, arg) in cargo_args.iter().enumerate() {
            for name in names {
                if arg == name {
                    values.extend(cargo_args.get(n + 1).map(|v| (*v).to_owned()));
                } else if let Some(value) = arg.strip_prefix(&format!("{name}=")) {
                    values.push(value.to_owned());
                } else if *name == "-p" && arg.len() > 2 && arg.starts_with("-p") {
                    values.push(arg[2..].to_owned());
                }
            }
        }
        values
    };
    let packages = values_of(&["-p", "--package"]);
    if !packages.is_empty() && !packages.iter().any(|p| p == BLACK_BOX_PACKAGE) {
        return false;
    }
    let chooses_targets = cargo_args
        .iter()
        .any(|arg| TARGET_OPTIONS.iter().any(|name| arg == name || arg.starts_with(&format!("{name}="))));
    !chooses_targets
        || cargo_args.iter().any(|arg| matches!(*arg, "--tests" | "--all-targets"))
        || !values_of(&["--test"]).is_empty()
}

/// The counts of every `test result:` line of a run.
#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    passed: u64,
    failed: u64,
    ignored: u64,
}

impl Tally {
    /// Adds the counts of a libtest summary line such as
    /// `test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; ...`.
    fn observe(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            return;
        };
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(label), Some(count)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(count) = count.parse::<u64>() else {
                continue;
            };
            match label {
                "passed" => self.passed += count,
                "failed" => self.failed += count,
                "ignored" => self.ignored += count,
                _ => {}
            }
        }
    }

    fn summary(&self) -> String {
        format!("summary: {} passed, {} failed, {} skipped", self.passed, self.failed, self.ignored)
    }

    /// The summary of a run that ended with cargo's `status`: a failure no test reported
    /// (a binary that crashed or did not build) is said, not hidden behind "0 failed".
    fn summary_for(&self, status: u8) -> String {
        if status != 0 && self.failed == 0 {
            format!("{}; cargo test FAILED (exit {status}): a test binary crashed or did not build", self.summary())
        } else {
            self.summary()
        }
    }
}

/// Runs cargo like `process::run`, echoing its stdout line by line into the tally.
async fn run_counting(
    cmd: &mut tokio::process::Command,
    signals: &mut Signals,
    tally: &mut Tally,
) -> Result<std::process::ExitStatus> {
    use tokio::io::AsyncBufReadExt;

    let mut child = cmd.process_group(0).stdout(std::process::Stdio::piped()).spawn().context("starting cargo")?;
    let pid = child.id().context("cargo has no process id")?;
    let stdout = child.stdout.take().context("cargo's stdout")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let mut stdout_open = true;
    loop {
        tokio::select! {
            line = lines.next_line(), if stdout_open => match line.context("reading cargo's output")? {
                Some(line) => {
                    println!("{line}");
                    tally.observe(&line);
                }
                None => stdout_open = false,
            },
            status = child.wait(), if !stdout_open => return status.context("waiting for cargo"),
            sig = signals.recv() => process::forward(sig, pid),
        }
    }
}

/// `cargo test` options that choose targets.
const TARGET_OPTIONS: &[&str] = &[
    "--lib",
    "--bin",
    "--bins",
    "--example",
    "--examples",
    "--test",
    "--tests",
    "--bench",
    "--benches",
    "--all-targets",
    "--doc",
];

/// The `cargo test` runs for the user's `extra` args: all targets of every package, then
/// the doc tests (which `--all-targets` leaves out; run only when the rest passed). A package choice (`-p`) replaces
/// `--workspace`; a target choice (`--lib`, `--test api`, ...) replaces `--all-targets`
/// and the doc-test run.
fn cargo_test_runs(extra: &[String]) -> Vec<Vec<String>> {
    // Only cargo's own options, not those after `--` that go to the test binaries.
    let cargo_args = extra.iter().take_while(|arg| *arg != "--");
    let has = |names: &[&str]| {
        cargo_args.clone().any(|arg| {
            names.iter().any(|name| {
                arg == name || arg.starts_with(&format!("{name}=")) || (*name == "-p" && arg.starts_with("-p"))
            })
        })
    };
    let packages = has(&["-p", "--package", "--workspace", "--all"]);
    let targets = has(TARGET_OPTIONS);
    let no_run = has(&["--no-run"]);

    let run = |selection: &str| {
        // Every failing test binary, not just the first, in one report.
        let mut args = vec!["test".to_owned(), "--no-fail-fast".to_owned()];
        if !packages {
            args.push("--workspace".to_owned());
        }
        if !selection.is_empty() {
            args.push(selection.to_owned());
        }
        args.extend(extra.iter().cloned());
        args
    };
    if targets {
        vec![run("")]
    } else if no_run {
        vec![run("--all-targets")]
    } else {
        vec![run("--all-targets"), run("--doc")]
    }
}

/// A fresh folder under /tmp (which every user can traverse), deleted on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    /// Creates `/tmp/<prefix>-<random>`.
    pub(crate) fn create(prefix: &str) -> Result<Self> {
        let path = PathBuf::from(format!("/tmp/{prefix}-{:016x}", rand::random::<u64>()));
        fs::create_dir(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self(path))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(error) = fs::remove_dir_all(&self.0) {
            eprintln!("xtask: could not delete {}: {error}", self.0.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Tally, cargo_test_runs, selects_black_box_tests};

    #[test]
    fn only_selections_that_include_the_black_box_tests_provision_their_clients() {
        let selects =
            |args: &[&str]| selects_black_box_tests(&args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>());
        assert!(selects(&[]));
        assert!(selects(&["--test", "api", "--", "reports"]));
        assert!(selects(&["-p", "llm-analytics"]));
        assert!(selects(&["--all-targets"]));
        assert!(!selects(&["-p", "domain"]));
        assert!(!selects(&["-pdomain", "-p", "adapters-http"]));
        assert!(!selects(&["--package=domain"]));
        assert!(!selects(&["--lib"]));
        assert!(!selects(&["--doc", "--", "--test", "api"]), "after -- the words are the test binary's");
    }

    #[test]
    fn the_tally_adds_every_summary_line() {
        let mut tally = Tally::default();
        tally.observe("test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s");
        tally.observe("test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out");
        tally.observe("test something ... ok");
        assert_eq!(tally, Tally { passed: 15, failed: 2, ignored: 1 });
        assert_eq!(tally.summary(), "summary: 15 passed, 2 failed, 1 skipped");
        assert_eq!(tally.summary_for(101), "summary: 15 passed, 2 failed, 1 skipped");
        let crashed = Tally { passed: 3, failed: 0, ignored: 0 };
        assert!(crashed.summary_for(101).contains("cargo test FAILED (exit 101)"), "{}", crashed.summary_for(101));
        assert_eq!(crashed.summary_for(0), "summary: 3 passed, 0 failed, 0 skipped");
    }

    fn runs(extra: &[&str]) -> Vec<String> {
        let extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        cargo_test_runs(&extra).iter().map(|run| run.join(" ")).collect()
    }

    #[test]
    fn without_args_runs_all_targets_then_doc_tests_of_the_workspace() {
        assert_eq!(
            runs(&[]),
            ["test --no-fail-fast --workspace --all-targets", "test --no-fail-fast --workspace --doc"]
        );
    }

    #[test]
    fn args_after_double_dash_go_to_both_runs() {
        assert_eq!(
            runs(&["--", "--nocapture"]),
            [
                "test --no-fail-fast --workspace --all-targets -- --nocapture",
                "test --no-fail-fast --workspace --doc -- --nocapture"
            ]
        );
    }

    #[test]
    fn a_package_choice_replaces_workspace() {
        assert_eq!(
            runs(&["-pdomain"]),
            ["test --no-fail-fast --all-targets -pdomain", "test --no-fail-fast --doc -pdomain"]
        );
        assert_eq!(
            runs(&["--package", "domain"]),
            ["test --no-fail-fast --all-targets --package domain", "test --no-fail-fast --doc --package domain"]
        );
    }

    #[test]
    fn a_target_choice_replaces_all_targets_and_the_doc_run() {
        assert_eq!(
            runs(&["--test", "api", "--", "--test-threads=1"]),
            ["test --no-fail-fast --workspace --test api -- --test-threads=1"]
        );
    }

    #[test]
    fn no_run_skips_doc_tests_which_cannot_be_built_without_running() {
        assert_eq!(runs(&["--no-run"]), ["test --no-fail-fast --workspace --all-targets --no-run"]);
    }
}
