//! Debian packages the tasks need beside the toolchain, installed when missing and this
//! user may (root with apt), so that a fresh machine needs nothing done by hand.

use std::path::Path;
use std::process::{Command, Stdio};

/// Installs Debian's `package` unless `program` exists. Returns whether `program` is there
/// afterwards; when it is not, says why and what `purpose` loses.
pub fn ensure(program: &str, package: &str, purpose: &str) -> bool {
    if Path::new(program).exists() {
        return true;
    }
    if !Path::new("/usr/bin/apt-get").exists() {
        eprintln!("xtask: {program} is missing and this machine has no apt-get; {purpose} cannot run");
        return false;
    }
    let is_root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    if !is_root {
        eprintln!("xtask: {program} is missing; install Debian's `{package}` package for {purpose}");
        return false;
    }
    eprintln!("xtask: installing Debian's {package} for {purpose} (once per machine)");
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends", package])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !install() {
        let _ = Command::new("apt-get").args(["update", "-q"]).stdout(Stdio::null()).status();
        if !install() {
            eprintln!("xtask: could not install {package}; {purpose} cannot run");
        }
    }
    Path::new(program).exists()
}
