//! Secrets at rest: AES-256-GCM under a ring of named keys (`LLMA_ENCRYPTION_KEYS`).

mod aes_gcm_cipher;
mod key_ring;
mod link_signer;

pub use aes_gcm_cipher::AesGcmCipher;
pub use key_ring::{KeyRing, KeyRingError, generate_key_spec};
pub use link_signer::HmacLinkSigner;
