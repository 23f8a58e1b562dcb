//! Standard Webhooks signatures: `v1,` + base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`,
//! keyed by the bytes after `whsec_` (base64-decoded), else the secret's UTF-8 bytes.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::hmac;

/// The key bytes of a secret.
fn key_bytes(secret: &str) -> Vec<u8> {
    match secret.strip_prefix("whsec_").map(|encoded| STANDARD.decode(encoded)) {
        Some(Ok(bytes)) => bytes,
        _ => secret.as_bytes().to_vec(),
    }
}

/// The base64 signature of one message.
pub fn webhook_signature(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, &key_bytes(secret));
    let mut context = hmac::Context::with_key(&key);
    context.update(format!("{id}.{timestamp}.").as_bytes());
    context.update(body);
    STANDARD.encode(context.sign().as_ref())
}

/// The `webhook-signature` header's value.
pub fn sign_webhook(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    format!("v1,{}", webhook_signature(secret, id, timestamp, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_standard_webhooks_reference_vector() {
        // The example of the Standard Webhooks specification.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(sign_webhook(secret, id, 1_614_265_330, body), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn a_plain_secret_keys_with_its_bytes() {
        let plain = "a-plain-secret-of-24-chars!";
        assert_ne!(sign_webhook(plain, "i", 1, b"x"), sign_webhook("whsec_YWJj", "i", 1, b"x"));
    }
}
