//! The `KeyCipher` port: authenticated encryption of secrets with key rotation.

use std::fmt;

use secrecy::SecretString;
use uuid::Uuid;

use crate::ProjectId;

/// An encrypted secret as stored: an opaque, versioned envelope that names the key id that
/// sealed it. Its `Debug` shows only the length.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret(pub Vec<u8>);

impl fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealedSecret({} bytes)", self.0.len())
    }
}

/// What a sealed secret is bound to: opening it under another context fails, so a
/// ciphertext copied to another row or project is useless.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealContext {
    pub purpose: &'static str,
    pub project: ProjectId,
    pub row: Uuid,
}

impl SealContext {
    /// The associated data that the AEAD authenticates.
    pub fn associated_data(&self) -> Vec<u8> {
        format!("llma:{}:{}:{}", self.purpose, self.project.0, self.row).into_bytes()
    }
}

/// Why sealing or opening failed. Never carries secret material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    #[error("the sealed secret names key id `{0}`, which is not configured")]
    UnknownKeyId(String),
    #[error("the sealed secret is malformed")]
    Malformed,
    #[error("the sealed secret does not open under this key and context")]
    Tampered,
    #[error("encryption failed")]
    SealFailed,
}

/// Seals and opens secrets. The first configured key seals; every configured key opens.
#[cfg_attr(feature = "mocks", mockall::automock)]
pub trait KeyCipher: Send + Sync + 'static {
    /// Encrypts `plaintext` under the current key, bound to `context`.
    fn seal(&self, plaintext: &SecretString, context: &SealContext) -> Result<SealedSecret, CipherError>;
    /// Decrypts a secret sealed under any configured key for the same `context`.
    fn open(&self, sealed: &SealedSecret, context: &SealContext) -> Result<SecretString, CipherError>;
    /// Whether `sealed` was sealed under the current key (rotation skips those).
    fn is_current(&self, sealed: &SealedSecret) -> bool;
}
