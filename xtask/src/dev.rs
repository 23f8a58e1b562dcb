//! `cargo xtask dev` (server + persistent PostgreSQL + demo data) and `cargo xtask db`.
//!
//! Everything lives in `<repo>/.data` (git-ignored):
//! `pg/` the cluster, `pg.log` its log, `pg-port` its port, `encryption-keys` the value of
//! `LLMA_ENCRYPTION_KEYS`, `demo.json` what the admin commands printed for the demo
//! project, user and API key. Delete `.data` to start over.

use std::fs;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result, bail};
use base64::Engine;
use serde_json::{Value, json};

use crate::postgres::{Durability, LocalPostgres, PgBinaries, free_port, port_is_free};
use crate::process::{self, Signals, cargo_program};

/// The server's database inside the dev cluster.
const DATABASE: &str = "llm_analytics";
const DEFAULT_PORT: u16 = 5432;
const DEFAULT_BIND: &str = "127.0.0.1:8000";

/// The files under `<repo>/.data`, and where the cluster lives.
struct DevData(PathBuf);

impl DevData {
    fn cluster(&self) -> PathBuf {
        self.0.join("pg")
    }
    fn log(&self) -> PathBuf {
        self.0.join("pg.log")
    }
    /// Where the cluster and its log go: in the clone when PostgreSQL's user can reach
    /// it; otherwise (root working in a folder only root can enter, such as `/root` or a
    /// `mktemp -d`) a folder of this clone's own under `/var/tmp`, kept across restarts.
    fn cluster_home(&self, server_can_reach: impl Fn(&Path) -> bool) -> (PathBuf, PathBuf, bool) {
        if server_can_reach(&self.0) {
            return (self.cluster(), self.log(), false);
        }
        let home = PathBuf::from("/var/tmp").join(format!("llm-analytics-dev-{:016x}", fnv1a(&self.0)));
        (home.join("pg"), home.join("pg.log"), true)
    }
    fn port(&self) -> PathBuf {
        self.0.join("pg-port")
    }
    fn keys(&self) -> PathBuf {
        self.0.join("encryption-keys")
    }
    fn demo(&self) -> PathBuf {
        self.0.join("demo.json")
    }
}

/// Builds the server, prepares the database and demo data, and serves in the foreground
/// until Ctrl-C; returns the server's exit code.
pub async fn dev(root: &Path, signals: &mut Signals) -> Result<u8> {
    let data = DevData(root.join(".data"));
    let pg = start_cluster(&data, signals).await?;
    let database_url = pg.url(DATABASE);
    let keys = encryption_keys(&data.keys())?;

    let mut build = tokio::process::Command::new(cargo_program());
    build.args(["build", "-p", "llm-analytics"]).current_dir(root);
    if std::env::var_os("SQLX_OFFLINE").is_none() {
        build.env("SQLX_OFFLINE", "true");
    }
    let built = process::run(&mut build, signals).await?;
    process::check_status(built, "`cargo build -p llm-analytics`")?;
    let server = Server { binary: target_dir(root)?.join("debug/llm-analytics"), database_url, keys };

    let migrated = process::run(&mut server.command(&["migrate"]), signals).await?;
    process::check_status(migrated, "`llm-analytics migrate`")?;
    signals.check()?;
    let demo = demo_data(&data.demo(), &server)?;

    let bind = std::env::var("LLMA_BIND").unwrap_or_else(|_| DEFAULT_BIND.to_owned());
    print_how_to_call(&base_url(&bind), &demo, &server.database_url, &data.demo());

    let mut serve = server.command(&["serve"]);
    serve.env("LLMA_BIND", &bind);
    if std::env::var_os("RUST_LOG").is_none() {
        serve.env("RUST_LOG", "info,sqlx=warn");
    }
    let status = process::run(&mut serve, signals).await?;
    drop(pg);
    Ok(process::exit_code(status))
}

/// Starts the dev cluster, prints its URL, and keeps it up until Ctrl-C.
pub async fn db(root: &Path, signals: &mut Signals) -> Result<u8> {
    let data = DevData(root.join(".data"));
    let pg = start_cluster(&data, signals).await?;
    let url = pg.url(DATABASE);
    println!("DATABASE_URL={url}");
    println!("psql {url}");
    eprintln!("xtask: Ctrl-C stops it");
    signals.recv().await;
    drop(pg);
    Ok(0)
}

/// Starts `.data/pg` (initialising it the first time) or attaches to the server already
/// running there, and creates the `llm_analytics` database if it is missing.
async fn start_cluster(data: &DevData, signals: &mut Signals) -> Result<LocalPostgres> {
    let bin = PgBinaries::find()?;
    fs::create_dir_all(&data.0).with_context(|| format!("creating {}", data.0.display()))?;
    let (cluster, log, elsewhere) = data.cluster_home(|path| bin.server_can_reach(path));
    if elsewhere {
        let home = cluster.parent().unwrap_or(&cluster);
        fs::create_dir_all(home).with_context(|| format!("creating {}", home.display()))?;
        eprintln!(
            "xtask: the `postgres` user cannot enter {}, so PostgreSQL's data lives in {} (kept across \
             restarts; delete both folders to start over)",
            data.0.display(),
            home.display()
        );
    }
    let mut pg = LocalPostgres::new(bin, cluster, log, Durability::Durable);
    if let Some(port) = pg.running_port() {
        eprintln!(
            "xtask: PostgreSQL is already running on {} (port {port}); using it and leaving it running",
            pg.data_dir().display()
        );
        pg.attach(port);
    } else {
        if !pg.is_initialized() {
            eprintln!("xtask: creating a PostgreSQL cluster in {}", pg.data_dir().display());
            pg.init()?;
        }
        let port = choose_port(&data.port())?;
        pg.start(port, signals).await?;
        eprintln!("xtask: PostgreSQL on port {port} (log: {})", pg.log_file().display());
    }
    pg.ensure_database(DATABASE)?;
    Ok(pg)
}

/// FNV-1a of a path: a stable, short name for this clone's folder outside it.
fn fnv1a(path: &Path) -> u64 {
    path.as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3))
}

/// The port stored in `.data/pg-port` if it is free, else 5432 if free, else any free one;
/// the choice is stored so the URL stays the same between runs.
fn choose_port(file: &Path) -> Result<u16> {
    let stored = fs::read_to_string(file).ok().and_then(|text| text.trim().parse().ok());
    let port = match stored {
        Some(port) if port_is_free(port) => port,
        _ if port_is_free(DEFAULT_PORT) => DEFAULT_PORT,
        _ => free_port()?,
    };
    if stored != Some(port) {
        fs::write(file, format!("{port}\n")).with_context(|| format!("writing {}", file.display()))?;
    }
    Ok(port)
}

/// The contents of `.data/encryption-keys`, created the first time as one fresh key
/// `dev1:<base64 of 32 random bytes>`. Edit the file (`new:…,dev1:…`) to try a rotation.
fn encryption_keys(file: &Path) -> Result<String> {
    if let Ok(keys) = fs::read_to_string(file) {
        return Ok(keys.trim().to_owned());
    }
    let mut secret = [0u8; 32];
    rand::fill(&mut secret);
    let keys = format!("dev1:{}", base64::engine::general_purpose::STANDARD.encode(secret));
    let mut out = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
        .with_context(|| format!("creating {}", file.display()))?;
    writeln!(out, "{keys}")?;
    Ok(keys)
}

/// Where cargo puts build output (honours `CARGO_TARGET_DIR` and `.cargo/config.toml`).
pub(crate) fn target_dir(root: &Path) -> Result<PathBuf> {
    let out = std::process::Command::new(cargo_program())
        .args(["metadata", "--format-version=1", "--no-deps"])
        .current_dir(root)
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!("cargo metadata failed");
    }
    let metadata: Value = serde_json::from_slice(&out.stdout).context("reading cargo metadata")?;
    let dir = metadata["target_directory"].as_str().context("cargo metadata has no target_directory")?;
    Ok(PathBuf::from(dir))
}

/// The server binary and the environment every one of its commands gets. The rest of the
/// user's environment is passed through.
pub(crate) struct Server {
    pub(crate) binary: PathBuf,
    pub(crate) database_url: String,
    pub(crate) keys: String,
}

impl Server {
    pub(crate) fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.binary);
        cmd.args(args).env("DATABASE_URL", &self.database_url).env("LLMA_ENCRYPTION_KEYS", &self.keys);
        cmd
    }

    /// Runs an admin command and returns the JSON object it printed.
    pub(crate) fn admin(&self, args: &[&str]) -> Result<Value> {
        let mut cmd = self.command(&["admin"]).into_std();
        cmd.args(args).stdin(Stdio::null()).stderr(Stdio::inherit());
        let out = cmd.output().with_context(|| format!("running {}", self.binary.display()))?;
        let quoted: Vec<String> = args
            .iter()
            .map(|arg| if arg.contains([' ', '*']) { format!("\"{arg}\"") } else { (*arg).to_owned() })
            .collect();
        let shown = format!("llm-analytics admin {}", quoted.join(" "));
        if !out.status.success() {
            bail!("`{shown}` failed ({})", out.status);
        }
        // The last line that is a JSON object, in case anything else went to stdout.
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .rev()
            .filter_map(|line| serde_json::from_str::<Value>(line.trim()).ok())
            .find(Value::is_object)
            .with_context(|| format!("`{shown}` printed no JSON object"))
    }
}

/// The demo project, user and API key: read from `.data/demo.json`, or created with the
/// admin commands and saved there the first time.
fn demo_data(file: &Path, server: &Server) -> Result<Value> {
    if let Ok(text) = fs::read_to_string(file) {
        return serde_json::from_str(&text).with_context(|| format!("reading {}", file.display()));
    }
    eprintln!("xtask: creating the demo project, user and API key");
    let project = server.admin(&["create-project", "--name", "Demo project"])?;
    let project_id = scalar(&project["id"]).context("create-project printed no id")?;
    let user =
        server.admin(&["create-user", "--email", "demo@example.com", "--project", &project_id, "--level", "admin"])?;
    let api_key =
        server.admin(&["create-api-key", "--email", "demo@example.com", "--scopes", "*", "--label", "demo"])?;
    let demo = json!({ "project": project, "user": user, "api_key": api_key });
    fs::write(file, serde_json::to_string_pretty(&demo)? + "\n")
        .with_context(|| format!("writing {}", file.display()))?;
    Ok(demo)
}

/// A JSON string or number as plain text.
pub(crate) fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// `http://<LLMA_BIND>`, with a wildcard address replaced by loopback.
fn base_url(bind: &str) -> String {
    match bind.parse::<SocketAddr>() {
        Ok(mut addr) => {
            if addr.ip().is_unspecified() {
                addr.set_ip(match addr.ip() {
                    IpAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
                    IpAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
                });
            }
            format!("http://{addr}")
        }
        Err(_) => format!("http://{bind}"),
    }
}

fn print_how_to_call(base: &str, demo: &Value, database_url: &str, demo_file: &Path) {
    let project = scalar(&demo["project"]["id"]).unwrap_or_default();
    let key = scalar(&demo["api_key"]["key"]).unwrap_or_default();
    let token = scalar(&demo["project"]["api_token"]).unwrap_or_default();
    println!();
    println!("  API docs      {base}/api/docs/");
    println!(
        "  try           curl -H \"Authorization: Bearer {key}\" {base}/api/environments/{project}/llm_analytics/provider_keys/"
    );
    println!("  project token {token} (for ingestion)");
    println!("  database      psql {database_url}");
    println!("  demo data     {}", demo_file.display());
    println!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cluster_stays_in_the_clone_when_postgres_can_reach_it_else_moves_to_var_tmp() {
        let data = DevData(PathBuf::from("/root/clone/.data"));
        assert_eq!(data.cluster_home(|_| true), (data.cluster(), data.log(), false));
        let (cluster, log, elsewhere) = data.cluster_home(|_| false);
        assert!(elsewhere);
        assert!(cluster.starts_with("/var/tmp") && cluster.ends_with("pg"), "{}", cluster.display());
        assert_eq!(log.parent(), cluster.parent());
        let other = DevData(PathBuf::from("/root/other/.data"));
        assert_ne!(other.cluster_home(|_| false).0, cluster, "each clone has its own");
        assert_eq!(data.cluster_home(|_| false).0, cluster, "and keeps it across runs");
    }

    #[test]
    fn base_url_points_a_wildcard_bind_at_loopback() {
        assert_eq!(base_url("127.0.0.1:8000"), "http://127.0.0.1:8000");
        assert_eq!(base_url("0.0.0.0:9000"), "http://127.0.0.1:9000");
        assert_eq!(base_url("[::]:9000"), "http://[::1]:9000");
        assert_eq!(base_url("localhost:8000"), "http://localhost:8000");
    }
}
