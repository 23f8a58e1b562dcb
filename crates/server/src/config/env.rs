//! Reading one variable: absent or blank is "not set", and every problem names the variable.

use std::time::Duration;

use super::ConfigError;

/// The variables the configuration is read from (the process environment, or a map in tests).
pub struct Env<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Env<'a> {
    pub fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self { lookup }
    }

    /// The variable as set, blank included (`LLMA_METRICS_BIND=` turns metrics off).
    pub fn raw(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
    }

    /// The variable, `None` when absent or blank.
    pub fn get(&self, name: &str) -> Option<String> {
        self.raw(name).filter(|value| !value.trim().is_empty())
    }

    /// A number within `range`, `default` when not set.
    pub fn number<T>(&self, name: &str, range: std::ops::RangeInclusive<T>, default: T) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display,
    {
        let Some(raw) = self.get(name) else {
            return Ok(default);
        };
        let value: T = raw.trim().parse().map_err(|_| error(name, format!("expected a number, got `{raw}`")))?;
        if !range.contains(&value) {
            return Err(error(name, format!("must be between {} and {}", range.start(), range.end())));
        }
        Ok(value)
    }

    /// Whole seconds within `range`, `default` when not set.
    pub fn seconds(
        &self,
        name: &str,
        range: std::ops::RangeInclusive<u64>,
        default: u64,
    ) -> Result<Duration, ConfigError> {
        self.number(name, range, default).map(Duration::from_secs)
    }

    /// A yes/no switch, `false` when not set.
    pub fn flag(&self, name: &str) -> Result<bool, ConfigError> {
        let Some(raw) = self.get(name) else {
            return Ok(false);
        };
        match raw.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err(error(name, format!("expected true or false, got `{raw}`"))),
        }
    }
}

/// A problem with `variable`.
pub fn error(variable: &str, message: impl Into<String>) -> ConfigError {
    ConfigError { variable: variable.to_owned(), message: message.into() }
}
