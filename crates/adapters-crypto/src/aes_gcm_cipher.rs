//! `KeyCipher` with AES-256-GCM. Envelope: `0x01 | id_len | key id | 12-byte nonce |
//! ciphertext+tag`; the associated data binds it to purpose, project and row.

use domain::crypto::{CipherError, KeyCipher, SealContext, SealedSecret};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretString};

use crate::KeyRing;

const VERSION: u8 = 1;

/// Seals with the ring's current key, opens with any of its keys.
pub struct AesGcmCipher {
    ring: KeyRing,
    random: SystemRandom,
}

impl AesGcmCipher {
    pub fn new(ring: KeyRing) -> Self {
        Self { ring, random: SystemRandom::new() }
    }

    fn aead_key(bytes: &[u8; 32]) -> LessSafeKey {
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, bytes).expect("a 32-byte key fits AES-256-GCM"))
    }
}

/// The parts of an envelope.
struct Envelope<'a> {
    key_id: &'a str,
    nonce: [u8; NONCE_LEN],
    ciphertext: &'a [u8],
}

fn parse_envelope(bytes: &[u8]) -> Result<Envelope<'_>, CipherError> {
    let (&version, rest) = bytes.split_first().ok_or(CipherError::Malformed)?;
    if version != VERSION {
        return Err(CipherError::Malformed);
    }
    let (&id_len, rest) = rest.split_first().ok_or(CipherError::Malformed)?;
    let id_len = usize::from(id_len);
    if rest.len() < id_len + NONCE_LEN + AES_256_GCM.tag_len() {
        return Err(CipherError::Malformed);
    }
    let (id, rest) = rest.split_at(id_len);
    let key_id = std::str::from_utf8(id).map_err(|_| CipherError::Malformed)?;
    let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
    let nonce = nonce.try_into().map_err(|_| CipherError::Malformed)?;
    Ok(Envelope { key_id, nonce, ciphertext })
}

impl KeyCipher for AesGcmCipher {
    fn seal(&self, plaintext: &SecretString, context: &SealContext) -> Result<SealedSecret, CipherError> {
        let key_id = self.ring.current_id();
        let key = self.ring.find(key_id).ok_or(CipherError::SealFailed)?;
        let mut nonce = [0u8; NONCE_LEN];
        self.random.fill(&mut nonce).map_err(|_| CipherError::SealFailed)?;
        let mut in_out = plaintext.expose_secret().as_bytes().to_vec();
        Self::aead_key(key)
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.associated_data()),
                &mut in_out,
            )
            .map_err(|_| CipherError::SealFailed)?;
        let mut envelope = Vec::with_capacity(2 + key_id.len() + NONCE_LEN + in_out.len());
        envelope.push(VERSION);
        envelope.push(u8::try_from(key_id.len()).map_err(|_| CipherError::SealFailed)?);
        envelope.extend_from_slice(key_id.as_bytes());
        envelope.extend_from_slice(&nonce);
        envelope.extend_from_slice(&in_out);
        Ok(SealedSecret(envelope))
    }

    fn open(&self, sealed: &SealedSecret, context: &SealContext) -> Result<SecretString, CipherError> {
        let envelope = parse_envelope(&sealed.0)?;
        let key =
            self.ring.find(envelope.key_id).ok_or_else(|| CipherError::UnknownKeyId(envelope.key_id.to_owned()))?;
        let mut in_out = envelope.ciphertext.to_vec();
        let plaintext = Self::aead_key(key)
            .open_in_place(
                Nonce::assume_unique_for_key(envelope.nonce),
                Aad::from(context.associated_data()),
                &mut in_out,
            )
            .map_err(|_| CipherError::Tampered)?;
        let text = String::from_utf8(plaintext.to_vec()).map_err(|_| CipherError::Malformed)?;
        Ok(SecretString::from(text))
    }

    fn is_current(&self, sealed: &SealedSecret) -> bool {
        parse_envelope(&sealed.0).is_ok_and(|e| e.key_id == self.ring.current_id())
    }
}

#[cfg(test)]
mod tests {
    use domain::ProjectId;

    use super::*;
    use crate::generate_key_spec;

    fn context(project: i64) -> SealContext {
        SealContext { purpose: "provider_key", project: ProjectId(project), row: uuid::Uuid::from_u128(7) }
    }

    fn cipher(spec: &str) -> AesGcmCipher {
        AesGcmCipher::new(KeyRing::parse(spec).unwrap())
    }

    #[test]
    fn round_trips_and_hides_the_plaintext() {
        let cipher = cipher(&generate_key_spec("k1"));
        let sealed = cipher.seal(&SecretString::from("sk-very-secret-123"), &context(1)).unwrap();
        assert!(!sealed.0.windows(6).any(|w| w == b"secret"));
        assert_eq!(cipher.open(&sealed, &context(1)).unwrap().expose_secret(), "sk-very-secret-123");
    }

    #[test]
    fn nonces_differ_between_seals() {
        let cipher = cipher(&generate_key_spec("k1"));
        let a = cipher.seal(&SecretString::from("same"), &context(1)).unwrap();
        let b = cipher.seal(&SecretString::from("same"), &context(1)).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn a_ciphertext_moved_to_another_project_or_row_does_not_open() {
        let cipher = cipher(&generate_key_spec("k1"));
        let sealed = cipher.seal(&SecretString::from("secret"), &context(1)).unwrap();
        assert_eq!(cipher.open(&sealed, &context(2)).unwrap_err(), CipherError::Tampered);
        let other_row = SealContext { row: uuid::Uuid::from_u128(8), ..context(1) };
        assert_eq!(cipher.open(&sealed, &other_row).unwrap_err(), CipherError::Tampered);
    }

    #[test]
    fn tampering_is_detected() {
        let cipher = cipher(&generate_key_spec("k1"));
        let mut sealed = cipher.seal(&SecretString::from("secret"), &context(1)).unwrap();
        let last = sealed.0.len() - 1;
        sealed.0[last] ^= 1;
        assert_eq!(cipher.open(&sealed, &context(1)).unwrap_err(), CipherError::Tampered);
        assert_eq!(cipher.open(&SealedSecret(vec![1, 2]), &context(1)).unwrap_err(), CipherError::Malformed);
    }

    #[test]
    fn rotation_opens_old_secrets_and_seals_under_the_new_key() {
        let old_spec = generate_key_spec("old");
        let old = cipher(&old_spec);
        let sealed = old.seal(&SecretString::from("secret"), &context(1)).unwrap();

        let rotated = cipher(&format!("{},{old_spec}", generate_key_spec("new")));
        assert!(!rotated.is_current(&sealed));
        assert_eq!(rotated.open(&sealed, &context(1)).unwrap().expose_secret(), "secret");
        let resealed = rotated.seal(&SecretString::from("secret"), &context(1)).unwrap();
        assert!(rotated.is_current(&resealed));

        let without_old = cipher(&generate_key_spec("new"));
        assert_eq!(without_old.open(&sealed, &context(1)).unwrap_err(), CipherError::UnknownKeyId("old".into()));
    }
}
