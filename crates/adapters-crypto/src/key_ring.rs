//! Parsing `LLMA_ENCRYPTION_KEYS`: `id:base64-32-bytes`, comma-separated, first is current.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretBox};

/// One named 256-bit key.
pub(crate) struct NamedKey {
    pub(crate) id: String,
    pub(crate) bytes: SecretBox<[u8; 32]>,
}

/// The configured encryption keys; the first seals, all open.
pub struct KeyRing {
    pub(crate) keys: Vec<NamedKey>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        f.debug_struct("KeyRing").field("key_ids", &ids).finish()
    }
}

/// Why the key list was refused. Never includes key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyRingError {
    #[error("LLMA_ENCRYPTION_KEYS is empty: set it to `id:base64-of-32-random-bytes`")]
    Empty,
    #[error("LLMA_ENCRYPTION_KEYS entry {position} must look like `id:base64-of-32-bytes`")]
    Malformed { position: usize },
    #[error("LLMA_ENCRYPTION_KEYS entry {position}: key id must be 1-32 characters of [A-Za-z0-9_-]")]
    BadId { position: usize },
    #[error("LLMA_ENCRYPTION_KEYS entry {position} (`{id}`): the key must be 32 bytes, base64-encoded")]
    BadKey { position: usize, id: String },
    #[error("LLMA_ENCRYPTION_KEYS names key id `{0}` twice")]
    DuplicateId(String),
}

impl KeyRing {
    /// Parses the environment variable's value.
    pub fn parse(spec: &str) -> Result<Self, KeyRingError> {
        let mut keys: Vec<NamedKey> = Vec::new();
        for (index, entry) in spec.split(',').map(str::trim).filter(|e| !e.is_empty()).enumerate() {
            let position = index + 1;
            let (id, encoded) = entry.split_once(':').ok_or(KeyRingError::Malformed { position })?;
            let id = id.trim();
            if id.is_empty()
                || id.len() > 32
                || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(KeyRingError::BadId { position });
            }
            let decoded =
                STANDARD.decode(encoded.trim()).map_err(|_| KeyRingError::BadKey { position, id: id.to_owned() })?;
            let bytes: [u8; 32] =
                decoded.try_into().map_err(|_| KeyRingError::BadKey { position, id: id.to_owned() })?;
            if keys.iter().any(|k| k.id == id) {
                return Err(KeyRingError::DuplicateId(id.to_owned()));
            }
            keys.push(NamedKey { id: id.to_owned(), bytes: SecretBox::new(Box::new(bytes)) });
        }
        if keys.is_empty() {
            return Err(KeyRingError::Empty);
        }
        Ok(Self { keys })
    }

    /// The id of the key that seals.
    pub fn current_id(&self) -> &str {
        &self.keys[0].id
    }

    pub(crate) fn find(&self, id: &str) -> Option<&[u8; 32]> {
        self.keys.iter().find(|k| k.id == id).map(|k| k.bytes.expose_secret())
    }
}

/// A fresh `id:base64` key entry for `LLMA_ENCRYPTION_KEYS`.
pub fn generate_key_spec(id: &str) -> String {
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes).expect("the OS random number generator works");
    format!("{id}:{}", STANDARD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_several_keys_and_names_the_current_one() {
        let spec = format!("{}, {}", generate_key_spec("new"), generate_key_spec("old"));
        let ring = KeyRing::parse(&spec).unwrap();
        assert_eq!(ring.current_id(), "new");
        assert!(ring.find("old").is_some());
        assert!(!format!("{ring:?}").contains(spec.split(':').nth(1).unwrap()));
    }

    #[test]
    fn refuses_bad_entries_with_their_position() {
        assert_eq!(KeyRing::parse("").unwrap_err(), KeyRingError::Empty);
        assert_eq!(KeyRing::parse("nocolon").unwrap_err(), KeyRingError::Malformed { position: 1 });
        assert!(matches!(KeyRing::parse("k1:c2hvcnQ=").unwrap_err(), KeyRingError::BadKey { position: 1, .. }));
        let good = generate_key_spec("k1");
        assert_eq!(KeyRing::parse(&format!("{good},{good}")).unwrap_err(), KeyRingError::DuplicateId("k1".into()));
        assert_eq!(KeyRing::parse(&format!("{good},bad id:xx")).unwrap_err(), KeyRingError::BadId { position: 2 });
    }
}
