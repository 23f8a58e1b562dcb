//! PostgreSQL: where it is and how many connections this process holds.

use url::Url;

use super::ConfigError;
use super::env::Env;

/// `DATABASE_URL`; its `Debug` hides the password.
#[derive(Clone)]
pub struct DatabaseUrl(pub String);

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match Url::parse(&self.0) {
            Ok(mut url) if url.password().is_some() => {
                let _ = url.set_password(Some("****"));
                write!(f, "{:?}", url.as_str())
            }
            Ok(url) => write!(f, "{:?}", url.as_str()),
            Err(_) => f.write_str("\"<not a URL>\""),
        }
    }
}

#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// `DATABASE_URL`, which every command but `--help` needs.
    pub url: Option<DatabaseUrl>,
    /// `LLMA_DATABASE_MAX_CONNECTIONS`: the pool's size (default 16).
    pub max_connections: u32,
    /// `LLMA_DATABASE_READ_CONNECTIONS`: connections of the hot single-row reads (key
    /// lookups, API-key grants), beside the pool's (default 8).
    pub read_connections: u32,
}

impl DatabaseConfig {
    pub fn read(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            url: env.get("DATABASE_URL").map(DatabaseUrl),
            max_connections: env.number("LLMA_DATABASE_MAX_CONNECTIONS", 1..=1000, 16)?,
            read_connections: env.number("LLMA_DATABASE_READ_CONNECTIONS", 1..=1000, 8)?,
        })
    }
}
