//! `provider_keys/` and `provider_key_validations/`.

mod dto;
mod handlers;

pub use dto::{CreatedByDto, KeyCheckDto, ProviderKeyDto};
pub(crate) use handlers::*;
