//! What the selected tests need from outside, made ready before any of them starts (and
//! in this one place): Debian's chromium for the report page tests, a virtualenv with the
//! pinned Python clients of `tests/python-requirements.txt`, and the PostgreSQL client
//! tools. Tests read where these are from the environment and never install anything.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::postgres::PgBinaries;

/// Where the report tests find headless Chromium (Debian's package).
const CHROMIUM: &str = "/usr/bin/chromium";
/// The variable that tells tests which Python has the pinned clients.
pub const TEST_PYTHON: &str = "LLMA_TEST_PYTHON";
/// The variable that tells tests where `pg_dump` is.
pub const TEST_PG_DUMP: &str = "LLMA_TEST_PG_DUMP";
/// The pinned Python clients.
const REQUIREMENTS: &str = "tests/python-requirements.txt";

/// The environment the selected tests need, with what had to be made ready first.
pub struct Provisioned {
    pub env: Vec<(&'static str, String)>,
}

/// Makes ready what the black-box tests need when `black_box` (the selection includes
/// them): chromium, the Python clients, `pg_dump`. One clear error when something
/// cannot be had.
pub fn provision(root: &Path, bin: &PgBinaries, black_box: bool) -> Result<Provisioned> {
    let mut env = Vec::new();
    if !black_box {
        return Ok(Provisioned { env });
    }
    if !crate::packages::ensure(CHROMIUM, "chromium", "the report page tests") {
        bail!("{CHROMIUM} is needed by the report page tests and could not be installed (apt-get install chromium)");
    }
    env.push((TEST_PYTHON, python_with_requirements(root)?.to_string_lossy().into_owned()));
    let pg_dump = bin.bindir().join("pg_dump");
    if !pg_dump.is_file() {
        bail!("{} is missing: the PostgreSQL client tools are needed (apt-get install postgresql)", pg_dump.display());
    }
    env.push((TEST_PG_DUMP, pg_dump.to_string_lossy().into_owned()));
    Ok(Provisioned { env })
}

/// The Python of `target/test-python-<hash of the requirements>`, made once per set of
/// pins: in a scratch folder first, moved into place when complete.
fn python_with_requirements(root: &Path) -> Result<PathBuf> {
    let requirements = root.join(REQUIREMENTS);
    let pins = std::fs::read_to_string(&requirements).with_context(|| format!("reading {REQUIREMENTS}"))?;
    let mut hasher = DefaultHasher::new();
    pins.hash(&mut hasher);
    let venv = root.join("target").join(format!("test-python-{:016x}", hasher.finish()));
    let python = |venv: &Path| venv.join("bin").join("python");
    let ready = venv.join(".complete");
    if ready.is_file() {
        return Ok(python(&venv));
    }
    eprintln!("xtask: installing the pinned Python clients of {REQUIREMENTS} (once per set of pins)");
    let scratch = root.join("target").join(format!("test-python-scratch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    checked(
        Command::new("python3").args(["-m", "venv"]).arg(&scratch),
        "python3 -m venv (apt-get install python3-venv)",
    )?;
    checked(
        Command::new(python(&scratch))
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--timeout", "60", "-r"])
            .arg(&requirements),
        &format!("pip install -r {REQUIREMENTS}"),
    )?;
    let _ = std::fs::remove_dir_all(&venv);
    // Tests run `bin/python` (a link to the system's), which finds the packages from its
    // own place; the scripts' shebangs, which carry the scratch path, are not used.
    std::fs::rename(&scratch, &venv).context("moving the test virtualenv into place")?;
    std::fs::write(&ready, pins).context("marking the test virtualenv complete")?;
    Ok(python(&venv))
}

fn checked(command: &mut Command, what: &str) -> Result<()> {
    let output = command.stdin(Stdio::null()).output().with_context(|| format!("running {what}"))?;
    if !output.status.success() {
        bail!(
            "{what} failed, so the tests that drive the Python clients cannot run: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}
