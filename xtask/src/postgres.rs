//! A private PostgreSQL cluster, run from the machine's own binaries.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::process::{Signals, running_as_root};

/// How long PostgreSQL may take to accept connections after it is started.
const START_DEADLINE: Duration = Duration::from_secs(60);
/// How often readiness is checked while starting.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// The longest path a Unix socket may have (`sun_path` minus its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// The PostgreSQL programs of this machine, and whom they must run as.
#[derive(Debug, Clone)]
pub struct PgBinaries {
    bindir: PathBuf,
    /// PostgreSQL refuses to run as root: when we are root, server programs run through
    /// `runuser -u postgres`.
    as_postgres: bool,
}

impl PgBinaries {
    /// Finds the server binaries: `pg_config --bindir` if it is on `PATH`, else the newest
    /// `/usr/lib/postgresql/<version>/bin`.
    pub fn find() -> Result<Self> {
        let Some(bindir) = bindir_from_pg_config().or_else(newest_debian_bindir) else {
            bail!(
                "PostgreSQL server binaries not found (no `initdb` from `pg_config --bindir` or in \
                 /usr/lib/postgresql/*/bin): install them with `apt-get install postgresql`."
            );
        };
        let as_postgres = running_as_root()?;
        if as_postgres && !Command::new("id").args(["-u", "postgres"]).output()?.status.success() {
            bail!(
                "running as root, but there is no `postgres` user to run PostgreSQL as: \
                 `apt-get install postgresql` creates it."
            );
        }
        Ok(Self { bindir, as_postgres })
    }

    /// A server-side program (`initdb`, `postgres`, `pg_ctl`), run as the `postgres` user
    /// when we are root, in a process group of its own so a Ctrl-C does not reach it.
    fn server(&self, program: &str) -> Command {
        self.as_owner(self.bindir.join(program))
    }

    /// Any program, run as the user who owns the data directory.
    fn as_owner(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = if self.as_postgres {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        };
        // The `postgres` user may not be able to enter our working directory.
        cmd.current_dir("/").stdin(Stdio::null()).process_group(0);
        cmd
    }

    /// A client program (`pg_isready`, `psql`, `createdb`), run as ourselves.
    /// The folder of the PostgreSQL programs.
    pub fn bindir(&self) -> &Path {
        &self.bindir
    }

    pub fn client(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bindir.join(program));
        cmd.stdin(Stdio::null()).process_group(0);
        cmd
    }

    /// Whether the user PostgreSQL runs as can enter `path` (every folder above it
    /// searchable). Always true when we are not root: then PostgreSQL runs as us.
    pub fn server_can_reach(&self, path: &Path) -> bool {
        if !self.as_postgres {
            return true;
        }
        let mut test = self.as_owner("test");
        test.arg("-x").arg(path).stdout(Stdio::null()).stderr(Stdio::null());
        test.status().is_ok_and(|status| status.success())
    }

    /// Makes `path` (recursively) belong to the user PostgreSQL runs as.
    fn give_to_owner(&self, path: &Path) -> Result<()> {
        if self.as_postgres {
            let mut chown = Command::new("chown");
            chown.arg("-R").arg("postgres:").arg(path);
            checked(&mut chown, "chown")?;
        }
        Ok(())
    }
}

fn bindir_from_pg_config() -> Option<PathBuf> {
    let out = Command::new("pg_config").arg("--bindir").output().ok()?;
    let bindir = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    (out.status.success() && bindir.join("initdb").is_file()).then_some(bindir)
}

fn newest_debian_bindir() -> Option<PathBuf> {
    let version = |name: &str| -> Option<Vec<u32>> { name.split('.').map(|part| part.parse().ok()).collect() };
    fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let bindir = entry.path().join("bin");
            let version = version(entry.file_name().to_str()?)?;
            bindir.join("initdb").is_file().then_some((version, bindir))
        })
        .max()
        .map(|(_, bindir)| bindir)
}

/// What the cluster is for, which decides how safely it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Kept between runs (`cargo xtask dev`).
    Durable,
    /// Deleted after one run (`cargo xtask test`): no fsync, no full-page writes.
    Throwaway,
}

/// One PostgreSQL cluster: its data directory, its log, and the server we started.
///
/// Listens on 127.0.0.1 only; user `postgres`, no password (`trust`). Dropping a
/// `LocalPostgres` stops the server it started (`pg_ctl stop -m fast`), also when the
/// workflow fails or is interrupted; a server it merely [attached](Self::attach) to is
/// left running.
pub struct LocalPostgres {
    bin: PgBinaries,
    data_dir: PathBuf,
    log_file: PathBuf,
    durability: Durability,
    port: u16,
    /// The postmaster (or `runuser` around it) that we started and must stop.
    server: Option<Child>,
}

impl LocalPostgres {
    /// A cluster in `data_dir` (created by [`init`](Self::init)), whose server logs to
    /// `log_file`; nothing runs yet.
    pub fn new(bin: PgBinaries, data_dir: PathBuf, log_file: PathBuf, durability: Durability) -> Self {
        Self { bin, data_dir, log_file, durability, port: 0, server: None }
    }

    /// The command line that restarts the running server in fast mode with the options it
    /// was started with, waiting until it accepts connections again (for tests that restart
    /// PostgreSQL under a running service).
    pub fn restart_command(&self) -> Vec<String> {
        let mut words = Vec::new();
        if self.bin.as_postgres {
            words.extend(["runuser", "-u", "postgres", "--"].map(str::to_owned));
        }
        words.push(self.bin.bindir.join("pg_ctl").to_string_lossy().into_owned());
        words.extend(["restart", "-m", "fast", "-w", "-s", "-D"].map(str::to_owned));
        words.push(self.data_dir.to_string_lossy().into_owned());
        // The server's user may not write our log file; its data directory it may.
        words.push("-l".to_owned());
        words.push(self.data_dir.join("restarted.log").to_string_lossy().into_owned());
        words
    }

    /// The cluster's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The port the server listens on (0 before [`start`](Self::start) or [`attach`](Self::attach)).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A client program of this cluster's PostgreSQL (`psql`, `pgbench`), run as ourselves.
    pub fn client(&self, program: &str) -> Command {
        self.bin.client(program)
    }

    /// Where the server started by [`start`](Self::start) writes its log.
    pub fn log_file(&self) -> &Path {
        &self.log_file
    }

    /// Whether `initdb` has run in the data directory.
    pub fn is_initialized(&self) -> bool {
        self.data_dir.join("PG_VERSION").is_file()
    }

    /// Creates the cluster (`initdb`): superuser `postgres`, trust auth, UTF-8.
    pub fn init(&self) -> Result<()> {
        fs::create_dir_all(&self.data_dir).with_context(|| format!("creating {}", self.data_dir.display()))?;
        self.bin.give_to_owner(&self.data_dir)?;
        if self.bin.as_postgres {
            let mut can_write = self.bin.as_owner("test");
            can_write.arg("-w").arg(&self.data_dir);
            if !can_write.status()?.success() {
                bail!(
                    "the `postgres` user cannot reach {}: make every folder above it searchable \
                     by others (`chmod o+x`) or work in a copy of the repository that it can reach.",
                    self.data_dir.display()
                );
            }
        }
        let mut initdb = self.bin.server("initdb");
        initdb.arg("-D").arg(&self.data_dir).args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"]);
        if self.durability == Durability::Throwaway {
            initdb.arg("--no-sync");
        }
        checked(&mut initdb, "initdb")?;
        Ok(())
    }

    /// The port of a server that is already running on this data directory, if any
    /// (for example one left behind by a killed `cargo xtask dev`).
    pub fn running_port(&self) -> Option<u16> {
        let mut status = self.bin.server("pg_ctl");
        status.arg("status").arg("-D").arg(&self.data_dir);
        if !status.output().ok()?.status.success() {
            return None;
        }
        // postmaster.pid: pid, data directory, start time, port, ...
        let pid_file = fs::read_to_string(self.data_dir.join("postmaster.pid")).ok()?;
        pid_file.lines().nth(3)?.trim().parse().ok()
    }

    /// Uses the server already running on `port` without owning it: it is not stopped.
    pub fn attach(&mut self, port: u16) {
        self.port = port;
    }

    /// Starts the server on `port` and waits until it accepts connections.
    pub async fn start(&mut self, port: u16, signals: &mut Signals) -> Result<()> {
        self.port = port;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_file)
            .with_context(|| format!("opening {}", self.log_file.display()))?;
        let log_start = log.metadata()?.len();

        let mut postgres = self.bin.server("postgres");
        postgres.arg("-D").arg(&self.data_dir);
        for (name, value) in self.settings() {
            postgres.arg("-c").arg(format!("{name}={value}"));
        }
        postgres.stdout(log.try_clone()?).stderr(log);
        self.server = Some(postgres.spawn().context("starting postgres")?);
        self.wait_until_ready(log_start, signals).await
    }

    fn settings(&self) -> Vec<(&'static str, String)> {
        let mut settings = vec![
            ("port", self.port.to_string()),
            ("listen_addresses", "127.0.0.1".to_owned()),
            // Our own socket folder, so /var/run/postgresql need not exist or be writable;
            // none at all when its path would be too long for a socket.
            ("unix_socket_directories", self.socket_dir()),
        ];
        if self.durability == Durability::Throwaway {
            for name in ["fsync", "full_page_writes", "synchronous_commit"] {
                settings.push((name, "off".to_owned()));
            }
        }
        settings
    }

    fn socket_dir(&self) -> String {
        let dir = self.data_dir.to_string_lossy().into_owned();
        let socket = format!("{dir}/.s.PGSQL.{}", self.port);
        if socket.len() <= MAX_SOCKET_PATH { dir } else { String::new() }
    }

    /// Polls `pg_isready` until it succeeds, the server exits, the deadline passes, or a
    /// signal arrives.
    async fn wait_until_ready(&mut self, log_start: u64, signals: &mut Signals) -> Result<()> {
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            let ready = self
                .bin
                .client("pg_isready")
                .args(["-q", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-p"])
                .arg(self.port.to_string())
                .status()
                .context("running pg_isready")?;
            if ready.success() {
                return Ok(());
            }
            if let Some(exit) = self.server.as_mut().and_then(|s| s.try_wait().ok().flatten()) {
                self.server = None;
                bail!(
                    "PostgreSQL exited while starting ({exit}); from its log {}:\n{}",
                    self.log_file.display(),
                    self.log_since(log_start)
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "PostgreSQL did not accept connections within {START_DEADLINE:?}; from its log {}:\n{}",
                    self.log_file.display(),
                    self.log_since(log_start)
                );
            }
            tokio::select! {
                sig = signals.recv() => return Err(crate::process::Interrupted(sig).into()),
                () = tokio::time::sleep(POLL_INTERVAL) => {}
            }
        }
    }

    fn log_since(&self, offset: u64) -> String {
        let mut text = String::new();
        if let Ok(mut file) = File::open(&self.log_file) {
            let _ = file.seek(SeekFrom::Start(offset));
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    /// A connection URL for `database`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates `database` unless it exists.
    pub fn ensure_database(&self, database: &str) -> Result<()> {
        let port = self.port.to_string();
        let connection = ["-h", "127.0.0.1", "-p", &port, "-U", "postgres"];
        let mut exists = self.bin.client("psql");
        exists.args(connection).args(["-X", "-d", "postgres", "-tA", "-v", "ON_ERROR_STOP=1", "-c"]);
        exists.arg(format!("SELECT 1 FROM pg_database WHERE datname = '{database}'"));
        if String::from_utf8_lossy(&checked(&mut exists, "psql")?.stdout).trim() == "1" {
            return Ok(());
        }
        let mut createdb = self.bin.client("createdb");
        createdb.args(connection).arg(database);
        checked(&mut createdb, "createdb")?;
        Ok(())
    }

    /// Stops the server we started (`pg_ctl stop -m fast`) and waits for it to exit.
    pub fn stop(&mut self) -> Result<()> {
        let Some(mut server) = self.server.take() else {
            return Ok(());
        };
        let mut pg_ctl = self.bin.server("pg_ctl");
        pg_ctl.arg("stop").arg("-D").arg(&self.data_dir).args(["-m", "fast", "-w", "-s"]);
        if let Err(error) = checked(&mut pg_ctl, "pg_ctl stop")
            && server.try_wait()?.is_none()
        {
            // pg_ctl needs postmaster.pid, which a server interrupted early may not have
            // written yet: ask the process itself (runuser passes SIGTERM on).
            let _ = Command::new("kill").arg(server.id().to_string()).status();
            eprintln!("xtask: {error:#}; sent SIGTERM to PostgreSQL instead");
        }
        server.wait().context("waiting for PostgreSQL to exit")?;
        Ok(())
    }
}

impl Drop for LocalPostgres {
    fn drop(&mut self) {
        if let Err(error) = self.stop() {
            eprintln!("xtask: could not stop PostgreSQL in {}: {error:#}", self.data_dir.display());
        }
    }
}

/// A port on 127.0.0.1 that nothing listens on right now.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("looking for a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Whether nothing listens on 127.0.0.1:`port`.
pub fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// Runs `cmd` with its output captured; on failure the error carries that output.
fn checked(cmd: &mut Command, what: &str) -> Result<Output> {
    let out = cmd.output().with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}
