//! Personal API tokens (`phx_…`) and project tokens (`phc_…`): generated with the OS RNG,
//! shown once, stored only as a SHA-256 hash (personal) or in clear (project tokens are
//! public by design: SDKs embed them).

use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

const TOKEN_BYTES: usize = 33; // 44 URL-safe characters after the prefix

fn random_url_safe() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    // 6 bits per character: 264 bits of entropy in 44 characters.
    let mut out = String::with_capacity(44);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            out.push(ALPHABET[((buffer >> bits) & 0x3f) as usize] as char);
        }
    }
    out
}

/// A personal API key as handed to its owner once.
pub struct PersonalApiToken(SecretString);

impl PersonalApiToken {
    pub const PREFIX: &'static str = "phx_";

    /// A fresh random token.
    pub fn generate() -> Self {
        Self(SecretString::from(format!("{}{}", Self::PREFIX, random_url_safe())))
    }

    /// The token, to show once.
    pub fn secret(&self) -> &SecretString {
        &self.0
    }

    /// The hash under which it is stored.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of(self.0.expose_secret())
    }
}

/// A project's public ingestion token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectToken(pub String);

impl ProjectToken {
    pub const PREFIX: &'static str = "phc_";

    pub fn generate() -> Self {
        Self(format!("{}{}", Self::PREFIX, random_url_safe()))
    }
}

/// SHA-256 of a token, hex encoded. Tokens are high-entropy, so no salt or slow hash is needed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenHash(pub String);

impl TokenHash {
    pub fn of(token: &str) -> Self {
        Self(hex::encode(Sha256::digest(token.as_bytes())))
    }

    /// Whether the presented bearer has the shape of a personal API key at all.
    pub fn looks_like_personal_token(token: &str) -> bool {
        token.len() >= PersonalApiToken::PREFIX.len() + 43
            && token.starts_with(PersonalApiToken::PREFIX)
            && token[PersonalApiToken::PREFIX.len()..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_prefix_and_enough_random_characters() {
        let token = PersonalApiToken::generate();
        let raw = token.secret().expose_secret();
        assert!(raw.starts_with("phx_"));
        assert_eq!(raw.len(), 4 + 44);
        assert!(TokenHash::looks_like_personal_token(raw));
        assert_ne!(raw, PersonalApiToken::generate().secret().expose_secret());
    }

    #[test]
    fn hash_is_sha256_hex_and_not_the_token() {
        let token = PersonalApiToken::generate();
        let hash = token.hash();
        assert_eq!(hash.0.len(), 64);
        assert!(!hash.0.contains(&token.secret().expose_secret()[4..]));
        assert_eq!(hash, TokenHash::of(token.secret().expose_secret()));
    }

    #[test]
    fn malformed_bearers_are_recognised() {
        assert!(!TokenHash::looks_like_personal_token("phx_short"));
        assert!(!TokenHash::looks_like_personal_token(&format!("abc_{}", "a".repeat(44))));
        assert!(!TokenHash::looks_like_personal_token(&format!("phx_{}", "a b".repeat(15))));
    }

    #[test]
    fn project_tokens_are_public_and_prefixed() {
        assert!(ProjectToken::generate().0.starts_with("phc_"));
    }
}
