//! What a key of an OpenAI-compatible endpoint carries besides the key (spec section 1.1):
//! the endpoint's base URL and extra headers, sealed with the key so the key cannot be
//! sent anywhere else, and the model names to offer when the endpoint lists none.

use std::collections::BTreeMap;
use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::mask_api_key;
use crate::invalid::{FieldError, Rule};
use crate::reports::targets::names_private_host;

/// At most this many extra headers per key.
pub const MAX_EXTRA_HEADERS: usize = 20;

/// A header value longer than this is refused.
pub const MAX_HEADER_VALUE_CHARS: usize = 4096;

/// At most this many custom model names per key.
pub const MAX_CUSTOM_MODELS: usize = 200;

/// A custom model name longer than this is refused.
pub const MAX_MODEL_NAME_CHARS: usize = 255;

/// Headers the gateway sets itself: the key's bearer token and the request's framing.
const RESERVED_HEADERS: [&str; 8] =
    ["authorization", "host", "content-length", "content-type", "transfer-encoding", "connection", "te", "upgrade"];

/// An endpoint's base URL: `https://host[:port][/path]` (`http://` and addresses inside the
/// network only when the operator allows private endpoints), without credentials, query,
/// fragment or trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl(String);

impl BaseUrl {
    pub fn parse(raw: &str, allow_private: bool) -> Result<Self, Rule> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(Rule::Required);
        }
        let url = Url::parse(trimmed).map_err(|_| Rule::BaseUrlInvalid)?;
        let scheme_ok = url.scheme() == "https" || (allow_private && url.scheme() == "http");
        if !scheme_ok {
            return Err(Rule::BaseUrlNotHttps);
        }
        let host = url.host().ok_or(Rule::BaseUrlInvalid)?;
        let credentials = !url.username().is_empty() || url.password().is_some();
        if credentials || url.query().is_some() || url.fragment().is_some() || url.cannot_be_a_base() {
            return Err(Rule::BaseUrlInvalid);
        }
        if !allow_private && names_private_host(&host) {
            return Err(Rule::BaseUrlPrivate);
        }
        Ok(Self(url.as_str().trim_end_matches('/').to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `raw` names the endpoint stored as `stored` (as it would be stored).
    pub fn names(stored: &str, raw: &str) -> bool {
        Url::parse(raw.trim()).is_ok_and(|url| url.as_str().trim_end_matches('/') == stored)
    }
}

/// Why stored credentials may not be used under the operator's current policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointRefused {
    #[error("{0}")]
    Azure(super::AzureEndpointError),
    #[error("the base URL breaks {0:?}")]
    BaseUrl(Rule),
}

/// Extra headers sent with every call to the endpoint (a gateway's tenant or routing
/// headers). Names are lower-cased; values are secrets.
#[derive(Clone, Default)]
pub struct ExtraHeaders(BTreeMap<String, SecretString>);

impl ExtraHeaders {
    /// Checks each header as sent: `(name, value)`, where a value that is not a string is
    /// `None`. The field of a refusal is `extra_headers.<name>`.
    pub fn parse(sent: Vec<(String, Option<SecretString>)>) -> Result<Self, FieldError> {
        if sent.len() > MAX_EXTRA_HEADERS {
            return Err(FieldError::new("extra_headers", Rule::TooManyItems { max: MAX_EXTRA_HEADERS }));
        }
        let mut headers = BTreeMap::new();
        for (raw_name, value) in sent {
            let field = format!("extra_headers.{raw_name}");
            let name = raw_name.trim().to_ascii_lowercase();
            if name.is_empty() || !name.bytes().all(is_token_byte) {
                return Err(FieldError::new(field, Rule::HeaderName));
            }
            if RESERVED_HEADERS.contains(&name.as_str()) {
                return Err(FieldError::new(field, Rule::HeaderReserved));
            }
            let value = value.ok_or_else(|| FieldError::new(&field, Rule::NotAString))?;
            let text = value.expose_secret().trim();
            if text.chars().count() > MAX_HEADER_VALUE_CHARS {
                return Err(FieldError::new(field, Rule::TooLong { max: MAX_HEADER_VALUE_CHARS }));
            }
            if !text.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b)) {
                return Err(FieldError::new(field, Rule::HeaderValue));
            }
            let value = SecretString::from(text.to_owned());
            if headers.insert(name, value).is_some() {
                return Err(FieldError::new(field, Rule::HeaderName));
            }
        }
        Ok(Self(headers))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Name and value of each header, names in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &SecretString)> {
        self.0.iter().map(|(name, value)| (name.as_str(), value))
    }

    /// Each header with its value masked as keys are.
    pub fn masked(&self) -> BTreeMap<String, String> {
        self.0.iter().map(|(name, value)| (name.clone(), mask_api_key(value.expose_secret()))).collect()
    }

    pub(super) fn to_plain(&self) -> BTreeMap<String, String> {
        self.0.iter().map(|(name, value)| (name.clone(), value.expose_secret().to_owned())).collect()
    }

    pub(super) fn from_plain(plain: BTreeMap<String, String>) -> Self {
        Self(plain.into_iter().map(|(name, value)| (name, SecretString::from(value))).collect())
    }
}

impl fmt::Debug for ExtraHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.masked()).finish()
    }
}

impl PartialEq for ExtraHeaders {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len()
            && self.iter().zip(other.iter()).all(|((a, x), (b, y))| a == b && x.expose_secret() == y.expose_secret())
    }
}

/// `custom_models` as sent: trimmed, not blank, each once, in the order sent.
pub fn parse_custom_models(sent: Vec<Option<String>>) -> Result<Vec<String>, FieldError> {
    if sent.len() > MAX_CUSTOM_MODELS {
        return Err(FieldError::new("custom_models", Rule::TooManyItems { max: MAX_CUSTOM_MODELS }));
    }
    let mut models: Vec<String> = Vec::with_capacity(sent.len());
    for (index, raw) in sent.into_iter().enumerate() {
        let field = || format!("custom_models[{index}]");
        let name = raw.ok_or_else(|| FieldError::new(field(), Rule::NotAString))?;
        let name = name.trim();
        if name.is_empty() {
            return Err(FieldError::new(field(), Rule::Blank));
        }
        if name.chars().count() > MAX_MODEL_NAME_CHARS {
            return Err(FieldError::new(field(), Rule::TooLong { max: MAX_MODEL_NAME_CHARS }));
        }
        if !models.iter().any(|m| m == name) {
            models.push(name.to_owned());
        }
    }
    Ok(models)
}

/// Where an OpenAI-compatible key is used: base URL and headers are sealed with the key;
/// the custom models are kept beside it (they are no secret) and joined when it is opened.
#[derive(Debug, Clone, PartialEq)]
pub struct CompatibleEndpoint {
    pub base_url: BaseUrl,
    pub extra_headers: ExtraHeaders,
    pub custom_models: Vec<String>,
}

/// What an OpenAI-compatible key's body sent besides the key; `None` leaves a field as it
/// is (on create: none).
#[derive(Debug, Clone, Default)]
pub struct EndpointInput {
    pub base_url: Option<String>,
    pub extra_headers: Option<ExtraHeaders>,
    pub custom_models: Option<Vec<String>>,
}

impl EndpointInput {
    pub fn is_empty(&self) -> bool {
        self.base_url.is_none() && self.extra_headers.is_none() && self.custom_models.is_none()
    }
}

/// What responses show of an OpenAI-compatible key besides its mask.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompatibleSettings {
    pub base_url: String,
    /// Header names with masked values.
    pub extra_headers: BTreeMap<String, String>,
    pub custom_models: Vec<String>,
}

impl CompatibleSettings {
    pub fn of(endpoint: &CompatibleEndpoint) -> Self {
        Self {
            base_url: endpoint.base_url.as_str().to_owned(),
            extra_headers: endpoint.extra_headers.masked(),
            custom_models: endpoint.custom_models.clone(),
        }
    }
}

/// An HTTP token character (RFC 9110), as header names are made of.
fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, value: &str) -> (String, Option<SecretString>) {
        (name.to_owned(), Some(SecretString::from(value.to_owned())))
    }

    #[test]
    fn a_base_url_is_https_without_extras_and_loses_its_trailing_slash() {
        assert_eq!(BaseUrl::parse("https://gw.example.com/v1/", false).unwrap().as_str(), "https://gw.example.com/v1");
        assert_eq!(BaseUrl::parse(" ", false), Err(Rule::Required));
        assert_eq!(BaseUrl::parse("gw.example.com", false), Err(Rule::BaseUrlInvalid));
        assert_eq!(BaseUrl::parse("http://gw.example.com", false), Err(Rule::BaseUrlNotHttps));
        for extra in ["https://u:p@gw.example.com", "https://gw.example.com/v1?x=1", "https://gw.example.com#f"] {
            assert_eq!(BaseUrl::parse(extra, false), Err(Rule::BaseUrlInvalid), "{extra}");
        }
        for inside in ["https://127.0.0.1", "https://10.0.0.8/v1", "https://169.254.169.254", "https://[::1]"] {
            assert_eq!(BaseUrl::parse(inside, false), Err(Rule::BaseUrlPrivate), "{inside}");
        }
        assert_eq!(BaseUrl::parse("https://localhost:8000", false), Err(Rule::BaseUrlPrivate));
        let local = BaseUrl::parse("http://127.0.0.1:8000/v1", true).unwrap();
        assert!(BaseUrl::names(local.as_str(), "http://127.0.0.1:8000/v1/"));
        assert!(!BaseUrl::names(local.as_str(), "http://127.0.0.1:8001/v1"));
    }

    #[test]
    fn extra_headers_are_bounded_lowercased_and_never_shown_whole() {
        let headers = ExtraHeaders::parse(vec![header("X-Tenant", "tenant-secret-42"), header("x-b", "v")]).unwrap();
        assert_eq!(headers.iter().map(|(n, _)| n).collect::<Vec<_>>(), ["x-b", "x-tenant"]);
        assert_eq!(headers.masked()["x-tenant"], "tena...t-42");
        assert!(!format!("{headers:?}").contains("tenant-secret-42"));

        let refused = |sent| ExtraHeaders::parse(sent).unwrap_err();
        assert_eq!(refused(vec![header("Authorization", "x")]).rule, Rule::HeaderReserved);
        assert_eq!(refused(vec![header("bad name", "x")]), FieldError::new("extra_headers.bad name", Rule::HeaderName));
        assert_eq!(refused(vec![header("x-a", "line\nbreak")]).rule, Rule::HeaderValue);
        assert_eq!(refused(vec![("x-a".into(), None)]).rule, Rule::NotAString);
        assert_eq!(refused(vec![header("X-A", "1"), header("x-a", "2")]).rule, Rule::HeaderName);
        let many = (0..=MAX_EXTRA_HEADERS).map(|n| header(&format!("x-{n}"), "v")).collect();
        assert_eq!(refused(many), FieldError::new("extra_headers", Rule::TooManyItems { max: MAX_EXTRA_HEADERS }));
    }

    #[test]
    fn custom_models_are_trimmed_listed_once_and_bounded() {
        let models = parse_custom_models(vec![Some(" llama3 ".into()), Some("qwen".into()), Some("llama3".into())]);
        assert_eq!(models.unwrap(), ["llama3", "qwen"]);
        assert_eq!(
            parse_custom_models(vec![Some("a".into()), Some(" ".into())]),
            Err(FieldError::new("custom_models[1]", Rule::Blank))
        );
        assert_eq!(parse_custom_models(vec![None]), Err(FieldError::new("custom_models[0]", Rule::NotAString)));
        let too_many = vec![Some("m".to_owned()); MAX_CUSTOM_MODELS + 1];
        assert_eq!(parse_custom_models(too_many).unwrap_err().rule, Rule::TooManyItems { max: MAX_CUSTOM_MODELS });
    }
}
