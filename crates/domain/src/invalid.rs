//! Why a value of a command was refused, as data: which value (`field`, its path in the
//! command, e.g. `delivery_targets[1].url`) and which rule it broke, with the rule's
//! bounds. The words a client reads are chosen by the adapter that answers it
//! (`adapters-http`'s wording); nothing here is phrased for a reader.

use crate::provider_key::{AzureEndpointError, Provider};

/// One refused value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} breaks {rule:?}")]
pub struct FieldError {
    pub field: String,
    pub rule: Rule,
}

impl FieldError {
    pub fn new(field: impl Into<String>, rule: Rule) -> Self {
        Self { field: field.into(), rule }
    }
}

/// A query-string flag: `true` or `false` (any case), or `1` / `0`.
pub fn parse_flag(raw: &str) -> Option<bool> {
    match raw.trim() {
        raw if raw.eq_ignore_ascii_case("true") || raw == "1" => Some(true),
        raw if raw.eq_ignore_ascii_case("false") || raw == "0" => Some(false),
        _ => None,
    }
}

/// The rules a command's values are held to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    // Any field.
    Required,
    Blank,
    TooLong {
        max: usize,
    },
    TooManyItems {
        max: usize,
    },
    OutOfRange {
        min: i64,
        max: i64,
    },
    NotAnInteger,
    NotAnIntegerOrNull,
    NotAString,
    NotAnObject,
    NotAList,
    /// A query flag that is not `true`/`false` (any case) or `1`/`0`.
    NotABoolean,
    NotAUuid,
    /// Item `index` of a list is not a UUID.
    ItemNotAUuid {
        index: usize,
    },
    NotADateTime,
    NotADateOrDateTime,
    /// `given` is not one of `choices` (the wire names, comma-separated; empty: not listed).
    NotAChoice {
        given: String,
        choices: String,
    },
    /// A summary's `filter` that is not `all`, `pass`, `fail` or `na`.
    SummaryFilter {
        given: String,
    },

    // Provider keys.
    UnknownProvider,
    ProviderUnchangeable,
    ApiKeyRequired,
    KeyFormat(Provider),
    AzureEndpoint(AzureEndpointError),
    ApiVersionTooLong {
        max: usize,
    },
    ApiVersionCharacters,
    NoStoredSecret,
    /// An OpenAI-compatible `base_url` that is not a base URL (credentials, query, ...).
    BaseUrlInvalid,
    BaseUrlNotHttps,
    BaseUrlPrivate,
    /// An extra header's name that is not an HTTP token (or is sent twice).
    HeaderName,
    /// An extra header the gateway sets itself (`Authorization`, `Host`, ...).
    HeaderReserved,
    /// An extra header's value with line breaks or control characters.
    HeaderValue,
    /// A new `base_url` without the key again.
    EndpointNeedsKey,
    /// The provider refused the key; `reason` is the gateway's verdict when it gave one.
    ProviderRejected {
        reason: Option<String>,
    },

    // Evaluations.
    /// A code evaluator's source that does not compile, and where.
    CodeSyntax {
        line: u32,
        column: u32,
        /// The compiler's own account.
        detail: String,
    },
    UnknownOperator {
        given: String,
        choices: String,
    },
    /// A filter value that must be a string (or a number, read as text).
    StringRequired,
    ScalarOrList,
    RegexRequired,
    PatternTooLong {
        max: usize,
    },
    RegexTooLarge,
    RegexInvalid {
        reason: String,
    },
    NumberRequired,
    TooManyFilters {
        max: usize,
    },
    TooManyConditions {
        max: usize,
    },
    KeyNotFound,
    KeyOfOtherProvider {
        key_provider: Provider,
        configured: Option<Provider>,
    },
    /// `evaluation_ids` of a key assignment, absent or empty.
    EvaluationIdsRequired,
    TooManyAssigned {
        max: usize,
    },

    // Model prices.
    /// A per-token price outside 0..=1 USD.
    PriceOutOfRange,

    // Backfills.
    NotInTheFuture,
    NotBeforeWindowEnd,
    PastRetention,

    // Results.
    NotBeforeDateTo,
    TooManyBuckets,

    // Reports.
    NotAnEvaluationOfProject,
    UnknownTimeZone {
        given: String,
    },
    RecurrenceRule,
    AlertConditionRequired,
    AlertConditionNotAlert,
    AlertConditionNotObject,
    AlertOperator,
    AlertPassRate,
    AlertWhole {
        key: &'static str,
        min: u64,
        max: u64,
    },
    TargetsNotAList,
    TooManyTargets {
        max: usize,
    },
    TargetNotAnObject,
    EmailRequired,
    TooManyAddresses {
        max: usize,
    },
    EmailInvalid {
        given: String,
    },
    SlackTargetIncomplete,
    SlackIntegrationUnknown {
        id: String,
    },
    SlackWebhookBase {
        base: String,
    },
    WebhookUrlRequired,
    WebhookSecretRequired,
    UnknownTargetType {
        given: String,
    },
    UrlInvalid,
    UrlNotHttps,
    UrlHasCredentials,
    UrlPrivate,
    WhsecNotBase64,
    WhsecTooShort {
        min: usize,
    },
    SecretTooShort {
        min: usize,
    },
    MaskedSecret,
}

/// The rules a type may be refused by, when it is refused alone (e.g. a name).
impl From<TextError> for Rule {
    fn from(error: TextError) -> Self {
        match error {
            TextError::Blank => Rule::Blank,
            TextError::TooLong { max } => Rule::TooLong { max },
        }
    }
}

/// Why a bounded text (a name, a prompt) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("blank")]
    Blank,
    #[error("longer than {max} characters")]
    TooLong { max: usize },
}
