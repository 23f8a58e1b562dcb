//! What evaluator code can see of an event's globals, as its evaluator reads it from the
//! code: a batch prepares only that of each event (most of a generation's size is its
//! input and output, held again in its properties).

use std::collections::BTreeSet;

/// The globals code can see of a generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeReads {
    pub input: bool,
    pub output: bool,
    /// `event`, which holds the properties too.
    pub event: bool,
    /// The properties code can read: `None` for all of them.
    pub properties: Option<BTreeSet<String>>,
}

impl CodeReads {
    /// Everything: what code that could not be read is given.
    pub fn everything() -> Self {
        Self { input: true, output: true, event: true, properties: None }
    }

    /// Nothing: what no code at all sees.
    pub fn nothing() -> Self {
        Self { input: false, output: false, event: false, properties: Some(BTreeSet::new()) }
    }

    /// What either of two codes run on the same events can see.
    #[must_use]
    pub fn union(self, other: CodeReads) -> CodeReads {
        let properties = match (self.properties, other.properties) {
            (Some(mut these), Some(those)) => {
                these.extend(those);
                Some(these)
            }
            _ => None,
        };
        CodeReads {
            input: self.input || other.input,
            output: self.output || other.output,
            event: self.event || other.event,
            properties,
        }
    }

    /// Whether code can see property `key` (through `properties` or `event`).
    pub fn sees_property(&self, key: &str) -> bool {
        self.event || self.properties.as_ref().is_none_or(|keys| keys.contains(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(keys: &[&str]) -> CodeReads {
        let properties = Some(keys.iter().map(|key| (*key).to_owned()).collect());
        CodeReads { input: false, output: true, event: false, properties }
    }

    #[test]
    fn two_codes_see_what_either_sees() {
        let both = reading(&["a"]).union(reading(&["b"]));
        assert_eq!(both, CodeReads { output: true, ..reading(&["a", "b"]) });
        assert!(both.sees_property("a") && both.sees_property("b") && !both.sees_property("c"));
        let all = reading(&["a"]).union(CodeReads { properties: None, ..reading(&[]) });
        assert!(all.sees_property("anything"));
        let event = reading(&[]).union(CodeReads { event: true, ..reading(&[]) });
        assert!(event.sees_property("anything"), "event holds the properties");
        assert_eq!(reading(&[]).union(CodeReads::everything()), CodeReads::everything());
        assert_eq!(CodeReads::nothing().union(reading(&["a"])), reading(&["a"]));
    }
}
