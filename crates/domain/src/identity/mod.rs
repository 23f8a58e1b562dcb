//! Projects, users, memberships and personal API keys: who may call what.

mod error;
mod grant_cache;
mod model;
mod ports;
mod scope;
mod service;
mod token;

pub use error::{AccessError, AdminError, Credentials};
pub use grant_cache::DEFAULT_GRANT_TTL;
pub use model::{Access, ApiKeyGrant, CreatedApiKey, MembershipLevel, NewApiKey, NewUser, Project, User};
pub use ports::{CreateUserOutcome, IdentityRepository};
pub use scope::{AccessLevel, Scope, ScopeGrant, ScopeObject, Scopes, ScopesError};
pub use service::{AccessService, AdminService};
pub use token::{PersonalApiToken, ProjectToken, TokenHash};

#[cfg(feature = "mocks")]
pub use ports::MockIdentityRepository;
