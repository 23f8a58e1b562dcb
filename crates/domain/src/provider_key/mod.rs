//! Provider keys: a project's own LLM provider credentials.

mod audit;
mod compatible;
mod credentials;
mod error;
mod input;
mod model;
mod ports;
mod provider;
mod reseal;
mod service;
#[cfg(test)]
pub(crate) mod testing;
mod writes;

pub use audit::{
    AuditNote, FieldChange, KeyAction, KeyActivity, NewKeyActivity, created as created_fields, diff as changed_fields,
};
pub use compatible::{
    BaseUrl, CompatibleEndpoint, CompatibleSettings, EndpointInput, EndpointRefused, ExtraHeaders, MAX_CUSTOM_MODELS,
    MAX_EXTRA_HEADERS, parse_custom_models,
};
pub use credentials::{
    ApiVersion, AzureEndpoint, AzureEndpointError, AzureTarget, CredentialField, DEFAULT_AZURE_API_VERSION,
    ProviderCredentials, SecretConfig, check_key_format, mask_api_key,
};
pub use error::*;
pub use input::{
    CheckProviderKey, CreateProviderKey, KeyEdits, UpdateProviderKey, parse_name, parse_provider, required_key,
};
pub use model::{KeyName, KeyState, NewProviderKeyRecord, ProviderKey, ProviderKeyChanges, UserSummary};
pub use ports::{DeleteOutcome, ProviderKeyRepository, ProviderKeyStatements, SealedKeyRow};
pub use provider::{Provider, UnknownProvider};
pub use reseal::ResealReport;
pub use service::{ProviderKeyService, ProviderKeyServiceConfig};
pub use writes::{KeyRemoval, KeyTransactions, KeyWrites};

#[cfg(feature = "mocks")]
pub use ports::{MockProviderKeyRepository, MockProviderKeyStatements};
#[cfg(feature = "mocks")]
pub use writes::MockKeyWrites;
