//! PostgreSQL adapters: the domain's repository ports on sqlx, and the migrations.

mod evaluation_config_repository;
mod identity_repository;
mod pool;
mod provider_key_repository;

pub use evaluation_config_repository::PgEvaluationConfigRepository;
pub use identity_repository::PgIdentityRepository;
pub use pool::{connect, migrate, ping};
pub use provider_key_repository::PgProviderKeyRepository;
pub use sqlx::PgPool;
