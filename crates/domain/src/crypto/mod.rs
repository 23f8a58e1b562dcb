//! Sealing of secrets at rest (provider keys, webhook secrets).

mod ports;

pub use ports::{CipherError, KeyCipher, SealContext, SealedSecret};

#[cfg(feature = "mocks")]
pub use ports::MockKeyCipher;
