//! The command line: `serve`, `migrate`, `admin ...`.

use clap::{Args, Parser, Subcommand};

/// llm-analytics: LLM provider keys, evaluations and reports behind an HTTP API.
#[derive(Debug, Parser)]
#[command(name = "llm-analytics", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply migrations, serve the API on LLMA_BIND (default 127.0.0.1:8000) and run the
    /// background worker (judge jobs), until SIGTERM/Ctrl-C.
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Operator commands; each prints JSON.
    #[command(subcommand)]
    Admin(AdminCommand),
}

/// What `serve` runs; by default both the API and the worker.
#[derive(Debug, Args)]
#[group(multiple = false)]
pub struct ServeArgs {
    /// Serve only the HTTP API (jobs are queued; worker processes run them).
    #[arg(long)]
    pub api_only: bool,
    /// Run only the background worker (no HTTP listener).
    #[arg(long)]
    pub worker_only: bool,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a project; prints {"id","name","api_token"}.
    CreateProject {
        #[arg(long)]
        name: String,
    },
    /// Create a user, optionally a member of a project; prints {"id","uuid","email"}.
    CreateUser(CreateUserArgs),
    /// Create a personal API key; prints {"id","key","scopes"} (the key is shown only now).
    CreateApiKey(CreateApiKeyArgs),
    /// Re-seal every stored secret under the first key of LLMA_ENCRYPTION_KEYS.
    RotateEncryptionKey,
}

#[derive(Debug, Args)]
pub struct CreateUserArgs {
    #[arg(long)]
    pub email: String,
    /// Project id to add the user to.
    #[arg(long)]
    pub project: Option<i64>,
    /// admin | member (default member; needs --project).
    #[arg(long)]
    pub level: Option<String>,
}

#[derive(Debug, Args)]
pub struct CreateApiKeyArgs {
    #[arg(long)]
    pub email: String,
    /// Comma-separated scopes such as `llm_analytics:read,evaluation:write`, or `*`.
    #[arg(long)]
    pub scopes: String,
    /// Restrict the key to these project ids (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub projects: Option<Vec<i64>>,
    #[arg(long)]
    pub label: Option<String>,
}
