//! Signed links (the report run page): HMAC-SHA256 under a key derived from each
//! encryption key, so the link key is never the sealing key itself; the current key
//! signs, every configured key verifies (a rotation keeps links working).

use domain::reports::LinkSigner;
use ring::hmac;
use secrecy::ExposeSecret;

use crate::KeyRing;

/// What the derived keys are for (a different label gives unrelated keys).
const LABEL: &[u8] = b"llm-analytics/report-run-links/v1";

/// `LinkSigner` over the key ring.
pub struct HmacLinkSigner {
    keys: Vec<hmac::Key>,
}

impl HmacLinkSigner {
    pub fn new(ring: &KeyRing) -> Self {
        let keys = ring
            .keys
            .iter()
            .map(|named| {
                let master = hmac::Key::new(hmac::HMAC_SHA256, named.bytes.expose_secret());
                hmac::Key::new(hmac::HMAC_SHA256, hmac::sign(&master, LABEL).as_ref())
            })
            .collect();
        Self { keys }
    }
}

impl std::fmt::Debug for HmacLinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HmacLinkSigner({} keys)", self.keys.len())
    }
}

impl LinkSigner for HmacLinkSigner {
    fn sign(&self, message: &str) -> String {
        hex::encode(hmac::sign(&self.keys[0], message.as_bytes()).as_ref())
    }

    fn verify(&self, message: &str, signature: &str) -> bool {
        let Ok(tag) = hex::decode(signature.trim()) else {
            return false;
        };
        self.keys.iter().any(|key| hmac::verify(key, message.as_bytes(), &tag).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate_key_spec;

    #[test]
    fn signs_verifies_and_survives_rotation() {
        let old = generate_key_spec("old");
        let signer = HmacLinkSigner::new(&KeyRing::parse(&old).unwrap());
        let signature = signer.sign("run.123");
        assert!(signer.verify("run.123", &signature));
        assert!(!signer.verify("run.124", &signature));
        assert!(!signer.verify("run.123", "zz"));
        assert!(!signer.verify("run.123", &"0".repeat(64)));

        let rotated = HmacLinkSigner::new(&KeyRing::parse(&format!("{},{old}", generate_key_spec("new"))).unwrap());
        assert!(rotated.verify("run.123", &signature), "a link signed before the rotation still opens");
        assert_ne!(rotated.sign("run.123"), signature);
        let other = HmacLinkSigner::new(&KeyRing::parse(&generate_key_spec("x")).unwrap());
        assert!(!other.verify("run.123", &signature));
    }
}
