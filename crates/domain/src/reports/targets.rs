//! Delivery targets as sent: validated one by one, each error naming its place
//! (`delivery_targets[1].url`), and the address guard shared with the delivery adapter.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use secrecy::SecretString;
use serde_json::Value;
use url::{Host, Url};

use crate::invalid::{FieldError, Rule};

/// At most this many targets per report.
pub const MAX_TARGETS: usize = 20;
/// At most this many addresses per e-mail target.
pub const MAX_ADDRESSES: usize = 50;
/// The shortest webhook secret (bytes after `whsec_`, or characters otherwise).
pub const MIN_SECRET_LEN: usize = 24;

/// Which URLs targets may name.
#[derive(Debug, Clone)]
pub struct TargetPolicy {
    /// `LLMA_ALLOW_PRIVATE_ENDPOINTS`: loopback/private addresses and plain http allowed.
    pub allow_private: bool,
    /// Slack incoming-webhook URLs must start with this (`https://hooks.slack.com/`).
    pub slack_webhook_base: String,
}

impl Default for TargetPolicy {
    fn default() -> Self {
        Self { allow_private: false, slack_webhook_base: "https://hooks.slack.com/".into() }
    }
}

/// A webhook secret as sent: a new one, or the mask the API showed (keep the stored one).
#[derive(Debug, Clone)]
pub enum SecretInput {
    New(SecretString),
    Masked(String),
}

/// A validated target, its secret not sealed yet.
#[derive(Debug, Clone)]
pub enum TargetInput {
    Email { addresses: Vec<String> },
    Slack { channel: String, webhook_url: Option<String>, integration_id: Option<String> },
    Webhook { url: String, secret: SecretInput },
}

/// Whether a URL's host is inside the network by its text alone: a private address
/// literal, `localhost` or an `.internal` name (what a name resolves to is checked where it
/// is connected to).
pub fn names_private_host(host: &Host<&str>) -> bool {
    match host {
        Host::Ipv4(ip) => is_private_address(IpAddr::V4(*ip)),
        Host::Ipv6(ip) => is_private_address(IpAddr::V6(*ip)),
        Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost") || name.ends_with(".internal")
        }
    }
}

/// Whether an address is one a report must not reach unless private endpoints are
/// allowed: loopback, private, link-local (cloud metadata), unspecified, CGNAT, unique
/// local, multicast, documentation/benchmark ranges.
pub fn is_private_address(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => is_private_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private_v4(v4);
            }
            is_private_v6(v6)
        }
    }
}

fn is_private_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240
}

fn is_private_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
}

fn field(index: usize, name: &str) -> String {
    if name.is_empty() { format!("delivery_targets[{index}]") } else { format!("delivery_targets[{index}].{name}") }
}

fn invalid(index: usize, name: &str, rule: Rule) -> FieldError {
    FieldError::new(field(index, name), rule)
}

fn text<'a>(target: &'a Value, key: &str) -> Option<&'a str> {
    target.get(key).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

/// Validates `delivery_targets` as sent.
pub fn parse_targets(raw: &Value, policy: &TargetPolicy) -> Result<Vec<TargetInput>, FieldError> {
    let Some(list) = raw.as_array() else {
        return Err(FieldError::new("delivery_targets", Rule::TargetsNotAList));
    };
    if list.len() > MAX_TARGETS {
        return Err(FieldError::new("delivery_targets", Rule::TooManyTargets { max: MAX_TARGETS }));
    }
    list.iter().enumerate().map(|(index, target)| parse_target(index, target, policy)).collect()
}

fn parse_target(index: usize, target: &Value, policy: &TargetPolicy) -> Result<TargetInput, FieldError> {
    if !target.is_object() {
        return Err(invalid(index, "", Rule::TargetNotAnObject));
    }
    let kind = target.get("type").and_then(Value::as_str).unwrap_or_default();
    match kind {
        "email" => {
            let value = text(target, "value").ok_or_else(|| invalid(index, "value", Rule::EmailRequired))?;
            let addresses: Vec<String> =
                value.split([',', ';']).map(str::trim).filter(|a| !a.is_empty()).map(str::to_owned).collect();
            if addresses.is_empty() {
                return Err(invalid(index, "value", Rule::EmailRequired));
            }
            if addresses.len() > MAX_ADDRESSES {
                return Err(invalid(index, "value", Rule::TooManyAddresses { max: MAX_ADDRESSES }));
            }
            if let Some(bad) = addresses.iter().find(|a| !is_email(a)) {
                return Err(invalid(index, "value", Rule::EmailInvalid { given: bad.clone() }));
            }
            Ok(TargetInput::Email { addresses })
        }
        "slack" => {
            let channel = text(target, "channel").unwrap_or_default().to_owned();
            let webhook_url = text(target, "webhook_url");
            let integration_id = target.get("integration_id").filter(|v| !v.is_null()).map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
            match (webhook_url, &integration_id) {
                (None, None) => {
                    return Err(invalid(index, "webhook_url", Rule::SlackTargetIncomplete));
                }
                // This server has no Slack app installations: such a target could never be sent.
                (None, Some(id)) => {
                    return Err(FieldError::new("delivery_targets", Rule::SlackIntegrationUnknown { id: id.clone() }));
                }
                _ => {}
            }
            if let Some(url) = webhook_url {
                let allowed = url.starts_with(&policy.slack_webhook_base) && Url::parse(url).is_ok();
                if !allowed {
                    let base = policy.slack_webhook_base.clone();
                    return Err(invalid(index, "webhook_url", Rule::SlackWebhookBase { base }));
                }
            }
            Ok(TargetInput::Slack { channel, webhook_url: webhook_url.map(str::to_owned), integration_id })
        }
        "webhook" => {
            let url = text(target, "url").ok_or_else(|| invalid(index, "url", Rule::WebhookUrlRequired))?;
            check_webhook_url(url, policy.allow_private).map_err(|rule| invalid(index, "url", rule))?;
            let secret = text(target, "secret").ok_or_else(|| invalid(index, "secret", Rule::WebhookSecretRequired))?;
            let secret = if secret.contains("...") || secret == "****" {
                SecretInput::Masked(secret.to_owned())
            } else {
                check_secret(secret).map_err(|rule| invalid(index, "secret", rule))?;
                SecretInput::New(SecretString::from(secret.to_owned()))
            };
            Ok(TargetInput::Webhook { url: url.to_owned(), secret })
        }
        other => Err(invalid(index, "type", Rule::UnknownTargetType { given: other.to_owned() })),
    }
}

/// A webhook URL: https (http too when private endpoints are allowed), no credentials,
/// and not an address inside the network by its text (the adapter checks the address it
/// actually connects to as well).
pub fn check_webhook_url(raw: &str, allow_private: bool) -> Result<Url, Rule> {
    let url = Url::parse(raw).map_err(|_| Rule::UrlInvalid)?;
    let scheme_ok = url.scheme() == "https" || (allow_private && url.scheme() == "http");
    if !scheme_ok {
        return Err(Rule::UrlNotHttps);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Rule::UrlHasCredentials);
    }
    let host = url.host().ok_or(Rule::UrlInvalid)?;
    if !allow_private && names_private_host(&host) {
        return Err(Rule::UrlPrivate);
    }
    Ok(url)
}

/// `whsec_` + base64 of at least 24 bytes, or any string of at least 24 characters.
pub fn check_secret(secret: &str) -> Result<(), Rule> {
    use base64::Engine;
    if let Some(encoded) = secret.strip_prefix("whsec_") {
        let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).map_err(|_| Rule::WhsecNotBase64)?;
        if bytes.len() < MIN_SECRET_LEN {
            return Err(Rule::WhsecTooShort { min: MIN_SECRET_LEN });
        }
        return Ok(());
    }
    if secret.chars().count() < MIN_SECRET_LEN {
        return Err(Rule::SecretTooShort { min: MIN_SECRET_LEN });
    }
    Ok(())
}

/// A pragmatic address check: one `@`, a non-empty local part, a dotted domain, no
/// spaces or angle brackets (the SMTP adapter parses it again).
fn is_email(address: &str) -> bool {
    let Some((local, domain)) = address.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && address.len() <= 254
        && !address.chars().any(|c| c.is_whitespace() || c.is_control() || "<>()[]\\,;:\"".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy() -> TargetPolicy {
        TargetPolicy::default()
    }

    fn error_of(targets: Value) -> FieldError {
        parse_targets(&targets, &policy()).unwrap_err()
    }

    #[test]
    fn each_kind_of_target_is_checked_and_errors_name_their_place() {
        let ok = parse_targets(
            &json!([
                {"type": "email", "value": "a@x.io, b@y.io"},
                {"type": "slack", "channel": "#evals", "webhook_url": "https://hooks.slack.com/services/T/B/X"},
                {"type": "webhook", "url": "https://example.com/hook", "secret": "a-secret-of-at-least-24-chars"}
            ]),
            &policy(),
        )
        .unwrap();
        assert_eq!(ok.len(), 3);
        assert!(matches!(&ok[0], TargetInput::Email { addresses } if addresses.len() == 2));

        let e = error_of(json!([{"type": "email", "value": "a@x.io"}, {"type": "pigeon"}]));
        assert_eq!(e, FieldError::new("delivery_targets[1].type", Rule::UnknownTargetType { given: "pigeon".into() }));
        let e = error_of(json!([{"type": "email", "value": "a@x.io, nope"}]));
        assert_eq!(e.field, "delivery_targets[0].value");
        assert_eq!(e.rule, Rule::EmailInvalid { given: "nope".into() });
        let e = error_of(json!([{"type": "slack", "webhook_url": "https://evil.example/services/x"}]));
        assert_eq!(e.field, "delivery_targets[0].webhook_url");
        let e = error_of(json!([{"type": "webhook", "url": "http://example.com", "secret": "x".repeat(30)}]));
        assert_eq!(e.rule, Rule::UrlNotHttps);
        let e = error_of(json!([{"type": "webhook", "url": "https://example.com", "secret": "short"}]));
        assert_eq!(e.field, "delivery_targets[0].secret");
        let e = error_of(json!("nope"));
        assert_eq!(e.field, "delivery_targets");
    }

    #[test]
    fn a_slack_target_only_an_app_integration_could_send_is_refused() {
        let e = error_of(json!([{"type": "slack", "channel": "#evals", "integration_id": 42}]));
        assert_eq!(e.field, "delivery_targets");
        assert_eq!(e.rule, Rule::SlackIntegrationUnknown { id: "42".into() });
        let both = json!([{"type": "slack", "channel": "#evals", "integration_id": 42,
                           "webhook_url": "https://hooks.slack.com/services/T/B/X"}]);
        assert!(parse_targets(&both, &policy()).is_ok(), "the webhook URL is what is sent to");
    }

    #[test]
    fn webhook_urls_inside_the_network_are_refused_unless_allowed() {
        for url in [
            "https://127.0.0.1/x",
            "https://10.1.2.3/x",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/x",
            "https://[::ffff:192.168.0.1]/x",
            "https://localhost/x",
            "https://metadata.google.internal/x",
        ] {
            assert!(check_webhook_url(url, false).is_err(), "{url}");
            assert!(check_webhook_url(url, true).is_ok(), "{url}");
        }
        assert!(check_webhook_url("https://hooks.example.com/x", false).is_ok());
        assert!(check_webhook_url("https://user:pw@example.com/x", true).is_err());
    }

    #[test]
    fn secrets_need_24_bytes_or_characters() {
        use base64::Engine;
        let b64 = |n: usize| base64::engine::general_purpose::STANDARD.encode(vec![7u8; n]);
        assert!(check_secret(&format!("whsec_{}", b64(24))).is_ok());
        assert!(check_secret(&format!("whsec_{}", b64(23))).is_err());
        assert!(check_secret("whsec_!!!").is_err());
        assert!(check_secret(&"x".repeat(24)).is_ok());
        assert!(check_secret(&"x".repeat(23)).is_err());
    }

    #[test]
    fn the_address_guard_knows_the_ranges() {
        for private in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
        ] {
            assert!(is_private_address(private.parse().unwrap()), "{private}");
        }
        for public in ["8.8.8.8", "1.1.1.1", "2606:4700::1111"] {
            assert!(!is_private_address(public.parse().unwrap()), "{public}");
        }
    }
}
