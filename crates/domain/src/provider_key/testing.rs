//! The provider key the domain's tests start from.

use chrono::Utc;

use super::{KeyState, Provider, ProviderKey};
use crate::{ProjectId, ProviderKeyId};

/// A stored OpenAI key of `project`, state `ok`, made now; a test changes what it is about
/// with struct update syntax.
pub(crate) fn stored_key(project: ProjectId) -> ProviderKey {
    ProviderKey {
        id: ProviderKeyId::generate(),
        project,
        provider: Provider::Openai,
        name: "prod".into(),
        state: KeyState::Ok,
        error_message: None,
        api_key_masked: "sk-t...2345".into(),
        azure_endpoint: None,
        api_version: None,
        compatible: None,
        created_by: None,
        created_at: Utc::now(),
        updated_at: Utc::now(),
        last_used_at: None,
    }
}
