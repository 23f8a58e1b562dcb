//! API key scopes: `object:read`, `object:write` (which implies read) or `*`.

use std::fmt;

/// What a scope is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScopeObject {
    LlmAnalytics,
    LlmProviderKey,
    Evaluation,
}

/// Read or write; write implies read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AccessLevel {
    Read,
    Write,
}

/// One scope an endpoint needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scope {
    pub object: ScopeObject,
    pub access: AccessLevel,
}

impl Scope {
    pub const LLM_ANALYTICS_READ: Scope = Scope { object: ScopeObject::LlmAnalytics, access: AccessLevel::Read };
    pub const LLM_ANALYTICS_WRITE: Scope = Scope { object: ScopeObject::LlmAnalytics, access: AccessLevel::Write };
    pub const PROVIDER_KEY_READ: Scope = Scope { object: ScopeObject::LlmProviderKey, access: AccessLevel::Read };
    pub const PROVIDER_KEY_WRITE: Scope = Scope { object: ScopeObject::LlmProviderKey, access: AccessLevel::Write };
    pub const EVALUATION_READ: Scope = Scope { object: ScopeObject::Evaluation, access: AccessLevel::Read };
    pub const EVALUATION_WRITE: Scope = Scope { object: ScopeObject::Evaluation, access: AccessLevel::Write };
}

impl ScopeObject {
    fn as_str(self) -> &'static str {
        match self {
            ScopeObject::LlmAnalytics => "llm_analytics",
            ScopeObject::LlmProviderKey => "llm_provider_key",
            ScopeObject::Evaluation => "evaluation",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        match raw {
            "llm_analytics" => Some(ScopeObject::LlmAnalytics),
            "llm_provider_key" => Some(ScopeObject::LlmProviderKey),
            "evaluation" => Some(ScopeObject::Evaluation),
            _ => None,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let access = match self.access {
            AccessLevel::Read => "read",
            AccessLevel::Write => "write",
        };
        write!(f, "{}:{}", self.object.as_str(), access)
    }
}

/// One granted scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScopeGrant {
    /// `*`: everything.
    All,
    One(Scope),
}

/// A scope list that did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopesError {
    #[error("at least one scope is required")]
    Empty,
    #[error(
        "unknown scope `{0}`: use `*` or `<object>:read|write` with object llm_analytics, llm_provider_key or evaluation"
    )]
    Unknown(String),
}

/// The scopes granted to a personal API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scopes(Vec<ScopeGrant>);

impl Scopes {
    /// Parses a comma-separated list such as `llm_analytics:read,evaluation:write` or `*`.
    pub fn parse(raw: &str) -> Result<Self, ScopesError> {
        Self::from_strings(raw.split(',').map(str::trim).filter(|s| !s.is_empty()))
    }

    /// Parses scopes one string each (as stored).
    pub fn from_strings<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<Self, ScopesError> {
        let mut grants = Vec::new();
        for item in items {
            let grant = if item == "*" {
                ScopeGrant::All
            } else {
                let (object, access) = item.split_once(':').ok_or_else(|| ScopesError::Unknown(item.to_owned()))?;
                let object = ScopeObject::parse(object).ok_or_else(|| ScopesError::Unknown(item.to_owned()))?;
                let access = match access {
                    "read" => AccessLevel::Read,
                    "write" => AccessLevel::Write,
                    _ => return Err(ScopesError::Unknown(item.to_owned())),
                };
                ScopeGrant::One(Scope { object, access })
            };
            if !grants.contains(&grant) {
                grants.push(grant);
            }
        }
        if grants.is_empty() {
            return Err(ScopesError::Empty);
        }
        Ok(Self(grants))
    }

    /// Whether these scopes allow `needed` (`*` allows all; write implies read).
    pub fn allows(&self, needed: Scope) -> bool {
        self.0.iter().any(|grant| match grant {
            ScopeGrant::All => true,
            ScopeGrant::One(scope) => scope.object == needed.object && scope.access >= needed.access,
        })
    }

    /// The scopes as strings, for storage and display.
    pub fn to_strings(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|grant| match grant {
                ScopeGrant::All => "*".to_owned(),
                ScopeGrant::One(scope) => scope.to_string(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_allows_everything() {
        let scopes = Scopes::parse("*").unwrap();
        assert!(scopes.allows(Scope::PROVIDER_KEY_WRITE));
        assert!(scopes.allows(Scope::EVALUATION_READ));
    }

    #[test]
    fn write_implies_read_but_not_the_reverse() {
        let scopes = Scopes::parse("llm_provider_key:write, evaluation:read").unwrap();
        assert!(scopes.allows(Scope::PROVIDER_KEY_READ));
        assert!(scopes.allows(Scope::PROVIDER_KEY_WRITE));
        assert!(scopes.allows(Scope::EVALUATION_READ));
        assert!(!scopes.allows(Scope::EVALUATION_WRITE));
        assert!(!scopes.allows(Scope::LLM_ANALYTICS_READ));
    }

    #[test]
    fn unknown_and_empty_scopes_are_refused() {
        assert_eq!(Scopes::parse(" , "), Err(ScopesError::Empty));
        assert!(matches!(Scopes::parse("billing:read"), Err(ScopesError::Unknown(_))));
        assert!(matches!(Scopes::parse("evaluation:admin"), Err(ScopesError::Unknown(_))));
    }

    #[test]
    fn scopes_round_trip_through_strings() {
        let scopes = Scopes::parse("evaluation:read,*").unwrap();
        let strings = scopes.to_strings();
        assert_eq!(strings, vec!["evaluation:read", "*"]);
        assert_eq!(Scopes::from_strings(strings.iter().map(String::as_str)).unwrap(), scopes);
    }
}
