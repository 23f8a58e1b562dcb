//! The sentences a client reads. The domain says which rule a value broke (and its
//! bounds); the words, in the reference API's phrasing where it has one, are chosen here.

use domain::Rule;
use domain::identity::Credentials;
use domain::ingestion::{PayloadError, PayloadProblem, TokenProblem};
use domain::provider_key::{AzureEndpointError, Provider};

/// The sentence for a broken rule.
pub fn rule(rule: &Rule) -> String {
    match rule {
        Rule::Required => "This field is required.".into(),
        Rule::Blank => "This field may not be blank.".into(),
        Rule::TooLong { max } => format!("Ensure this field has no more than {max} characters."),
        Rule::TooManyItems { max } => format!("Ensure this field has no more than {max} elements."),
        Rule::OutOfRange { min, max } => format!("Ensure this value is between {min} and {max}."),
        Rule::NotAnInteger => "A valid integer is required.".into(),
        Rule::NotAnObject => "Must be an object.".into(),
        Rule::NotAList => "Expected a list of items.".into(),
        Rule::NotABoolean => "Must be true or false.".into(),
        Rule::CodeSyntax { line, column, detail } => {
            format!("Syntax error at line {line}, column {column}: {detail}")
        }
        Rule::NotAnIntegerOrNull => "A valid integer (or null for no cap) is required.".into(),
        Rule::NotAString => "Not a valid string.".into(),
        Rule::NotAUuid => "Must be a valid UUID.".into(),
        Rule::ItemNotAUuid { index } => format!("Item {index}: must be a valid UUID."),
        Rule::NotADateTime => "Datetime has wrong format. Use ISO 8601.".into(),
        Rule::NotADateOrDateTime => "Enter an ISO 8601 date (2026-03-01) or date-time.".into(),
        Rule::NotAChoice { given, choices } if choices.is_empty() => format!("\"{given}\" is not a valid choice."),
        Rule::NotAChoice { given, choices } => format!("\"{given}\" is not a valid choice. Use one of: {choices}."),
        Rule::SummaryFilter { given } => {
            format!("\"{given}\" is not a valid choice. Choose one of: all, pass, fail, na.")
        }

        // Provider keys.
        Rule::UnknownProvider => unknown_provider(),
        Rule::ProviderUnchangeable => "The provider of a key cannot be changed.".into(),
        Rule::ApiKeyRequired => "API key is required.".into(),
        Rule::KeyFormat(Provider::Anthropic) => "Invalid Anthropic API key format. Keys start with 'sk-ant-'.".into(),
        Rule::KeyFormat(Provider::Openai) => {
            "Invalid OpenAI API key format. Keys start with 'sk-' or 'sk-proj-'.".into()
        }
        Rule::KeyFormat(provider) => format!("Invalid {} API key format.", provider.display_name()),
        Rule::AzureEndpoint(error) => azure_endpoint(*error).into(),
        Rule::ApiVersionTooLong { max } => format!("Ensure api_version has no more than {max} characters."),
        Rule::ApiVersionCharacters => "api_version may contain only letters, digits, '-' and '.'.".into(),
        Rule::NoStoredSecret => NO_STORED_SECRET.into(),
        Rule::BaseUrlInvalid => {
            "base_url must be a URL such as https://gateway.example.com/v1, without credentials, query or fragment."
                .into()
        }
        Rule::BaseUrlNotHttps => "base_url must use https://.".into(),
        Rule::BaseUrlPrivate => "base_url may not point at private, loopback, link-local or metadata addresses.".into(),
        Rule::HeaderName => "Not a valid HTTP header name (or the header is given twice).".into(),
        Rule::HeaderReserved => {
            "This header is set by the server (Authorization carries the API key); it cannot be overridden.".into()
        }
        Rule::HeaderValue => "Header values may not contain line breaks or control characters.".into(),
        Rule::EndpointNeedsKey => "Changing the endpoint requires the key again.".into(),
        Rule::ProviderRejected { reason } => {
            reason.clone().unwrap_or_else(|| "The provider did not accept this key.".into())
        }

        // Evaluations and their results.
        Rule::UnknownOperator { given, choices } => {
            format!("\"{given}\" is not a valid operator. Use one of: {choices}.")
        }
        Rule::StringRequired => "A string is required.".into(),
        Rule::ScalarOrList => "A string, number or boolean (or a non-empty list of them) is required.".into(),
        Rule::RegexRequired => "A regular expression (string) is required.".into(),
        Rule::PatternTooLong { max } => format!("Ensure this pattern has no more than {max} characters."),
        Rule::RegexTooLarge => "This regular expression is too large.".into(),
        Rule::RegexInvalid { reason } => format!("Invalid regular expression: {reason}."),
        Rule::NumberRequired => "A number is required.".into(),
        Rule::TooManyFilters { max } => format!("A condition has at most {max} property filters."),
        Rule::TooManyConditions { max } => format!("An evaluation has at most {max} conditions."),
        Rule::KeyNotFound => "Provider key not found.".into(),
        Rule::KeyOfOtherProvider { key_provider, configured: Some(configured) } => {
            format!("The provider key belongs to {key_provider}, not {configured}.")
        }
        Rule::KeyOfOtherProvider { key_provider, configured: None } => {
            format!("The provider key belongs to another provider ({key_provider}).")
        }
        Rule::EvaluationIdsRequired => "evaluation_ids is required".into(),
        Rule::TooManyAssigned { max } => format!("At most {max} evaluations can be assigned at once."),
        Rule::PriceOutOfRange => "Ensure this value is a price per token between 0 and 1 (USD).".into(),
        Rule::NotInTheFuture => "Must not be in the future.".into(),
        Rule::NotBeforeWindowEnd => "window_start must be before window_end.".into(),
        Rule::PastRetention => "Must lie inside the event retention window (LLMA_EVENT_RETENTION_DAYS).".into(),
        Rule::NotBeforeDateTo => "date_from must be before date_to.".into(),
        Rule::TooManyBuckets => "Too many buckets: narrow the dates or widen the interval.".into(),

        // Reports.
        Rule::NotAnEvaluationOfProject => "Enter the id of an evaluation of this project.".into(),
        Rule::UnknownTimeZone { given } => format!("Unknown time zone: {given}"),
        Rule::RecurrenceRule => "Invalid recurrence rule.".into(),
        Rule::AlertConditionRequired => "Alert reports need an alert_condition.".into(),
        Rule::AlertConditionNotAlert => "alert_condition applies only to alert reports.".into(),
        Rule::AlertConditionNotObject => "alert_condition must be an object.".into(),
        Rule::AlertOperator => "alert_condition.operator must be \"lt\" or \"gt\".".into(),
        Rule::AlertPassRate => "alert_condition.pass_rate must be a number from 0 to 100.".into(),
        Rule::AlertWhole { key, min, max } => {
            format!("alert_condition.{key} must be a whole number from {min} to {max}.")
        }
        Rule::TargetsNotAList => "Expected a list of delivery targets.".into(),
        Rule::TooManyTargets { max } => format!("At most {max} delivery targets."),
        Rule::TargetNotAnObject => "Each delivery target must be an object.".into(),
        Rule::EmailRequired => "Enter at least one e-mail address.".into(),
        Rule::TooManyAddresses { max } => format!("At most {max} addresses per target."),
        Rule::EmailInvalid { given } => format!("Invalid email address: {given}"),
        Rule::SlackTargetIncomplete => "A Slack target needs webhook_url or integration_id.".into(),
        Rule::SlackIntegrationUnknown { id } => format!(
            "Slack integration(s) not found for this team: [{id}]. Send Slack reports through an incoming \
             webhook: give the target a webhook_url."
        ),
        Rule::SlackWebhookBase { base } => format!("Slack webhook URLs start with {base}"),
        Rule::WebhookUrlRequired => "A webhook target needs a url.".into(),
        Rule::WebhookSecretRequired => "A webhook target needs a secret (whsec_ + base64, or 24+ characters).".into(),
        Rule::UnknownTargetType { given } => format!("Invalid delivery target type: {given}"),
        Rule::UrlInvalid => "Enter a valid URL.".into(),
        Rule::UrlNotHttps => "Webhook URLs must use https.".into(),
        Rule::UrlHasCredentials => "Webhook URLs may not carry credentials.".into(),
        Rule::UrlPrivate => "Webhook URLs may not point at private, loopback or link-local addresses.".into(),
        Rule::WhsecNotBase64 => "A whsec_ secret must be base64 after the prefix.".into(),
        Rule::WhsecTooShort { min } => format!("A whsec_ secret must hold at least {min} bytes."),
        Rule::SecretTooShort { min } => format!("The secret must be at least {min} characters."),
        Rule::MaskedSecret => {
            "Send the secret itself; a masked value only keeps the stored secret of the same URL.".into()
        }
    }
}

/// A stored key whose secret is gone.
pub const NO_STORED_SECRET: &str = "No API key configured for this provider key.";

/// The provider names a client may send.
pub fn unknown_provider() -> String {
    format!("Invalid provider. Must be one of: {}", Provider::names())
}

/// Why an Azure endpoint is refused (the gateway words a stored key's refusal alike).
pub fn azure_endpoint(error: AzureEndpointError) -> &'static str {
    match error {
        AzureEndpointError::Missing => "azure_endpoint is required for Azure OpenAI keys.",
        AzureEndpointError::NotAUrl => "azure_endpoint must be a valid URL.",
        AzureEndpointError::NotHttps => "azure_endpoint must use https://.",
        AzureEndpointError::NotAzureHost => {
            "azure_endpoint must be an Azure OpenAI endpoint (a host ending in .openai.azure.com, \
             .cognitiveservices.azure.com or .services.ai.azure.com)."
        }
    }
}

/// A capture body that is not a capture payload.
pub fn payload(error: &PayloadError) -> String {
    let (attr, problem) = match error {
        PayloadError::Json { line, column } => return format!("Malformed JSON at line {line} column {column}."),
        PayloadError::Invalid { attr, problem } => (attr.as_deref().unwrap_or(""), problem),
    };
    match problem {
        PayloadProblem::NotAPayload => {
            "The body must be a JSON object (one event or {\"api_key\", \"batch\": [...]}) or an array of events."
                .into()
        }
        PayloadProblem::BatchNotAnArray => "`batch` must be a JSON array of events.".into(),
        PayloadProblem::EmptyBatch => "The batch is empty: send at least one event.".into(),
        PayloadProblem::MixedTokens => "The events of one request carry different project tokens: send each \
                                        project's events separately."
            .into(),
        PayloadProblem::EventNotAnObject => format!("`{attr}` must be a JSON object (one event)."),
        PayloadProblem::NameMissing => format!("`{attr}` is missing: every event needs a name."),
        PayloadProblem::NameNotAString => format!("`{attr}` must be a non-empty string."),
        PayloadProblem::PropertiesNotAnObject => format!("`{attr}` must be a JSON object."),
        PayloadProblem::DistinctIdMissing => {
            format!("`{attr}` is missing: every event needs a non-empty distinct_id.")
        }
        PayloadProblem::UuidInvalid => format!("`{attr}` is not a valid UUID."),
        PayloadProblem::UuidNotAString => format!("`{attr}` must be a UUID string."),
        PayloadProblem::TimeInvalid => {
            format!("`{attr}` is not an ISO 8601 date and time (e.g. 2026-01-31T12:00:00Z).")
        }
        PayloadProblem::TimeNotAString => format!("`{attr}` must be an ISO 8601 date and time string."),
        PayloadProblem::OffsetNotWhole => format!("`{attr}` must be a whole number of milliseconds."),
    }
}

/// A capture or OTLP request without a usable project token.
pub fn token(problem: TokenProblem) -> &'static str {
    match problem {
        TokenProblem::MissingInBody => {
            "No project API key provided: send the project's public token as `api_key` (or `token`) in the body."
        }
        TokenProblem::MissingInRequest => {
            "No project API key provided: send the project's public token as `Authorization: Bearer phc_...` or \
             `?token=`."
        }
        TokenProblem::Unknown => "Project API key invalid. Use the public token (`phc_...`) of the project.",
    }
}

/// A request to the management API without usable credentials.
pub fn credentials(problem: Credentials) -> &'static str {
    match problem {
        Credentials::Missing => "Authentication credentials were not provided.",
        Credentials::Invalid => "Invalid personal API key.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_and_given_values_appear_in_the_sentence() {
        assert_eq!(rule(&Rule::TooLong { max: 400 }), "Ensure this field has no more than 400 characters.");
        assert_eq!(rule(&Rule::OutOfRange { min: 1, max: 10_000 }), "Ensure this value is between 1 and 10000.");
        assert_eq!(
            rule(&Rule::NotAChoice { given: "x".into(), choices: String::new() }),
            "\"x\" is not a valid choice."
        );
        assert_eq!(
            rule(&Rule::NotAChoice { given: "x".into(), choices: "a, b".into() }),
            "\"x\" is not a valid choice. Use one of: a, b."
        );
        assert_eq!(rule(&Rule::ProviderRejected { reason: None }), "The provider did not accept this key.");
        assert_eq!(
            rule(&Rule::KeyFormat(Provider::Anthropic)),
            "Invalid Anthropic API key format. Keys start with 'sk-ant-'."
        );
    }
}
