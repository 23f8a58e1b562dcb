//! Identifiers of the domain's entities. Projects and users have integer ids (as in the
//! reference API); everything else is a UUID (v7, so ids sort by creation time).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A project's integer id, the `{project_id}` of every path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ProjectId(pub i64);

/// A user's integer id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UserId(pub i64);

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new, time-ordered id.
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s.trim()).map(Self)
            }
        }
    };
}

uuid_id!(
    /// A stored provider key's id.
    ProviderKeyId
);
uuid_id!(
    /// A personal API key's id (not the secret token).
    ApiKeyId
);
uuid_id!(
    /// A model configuration's id.
    ModelConfigurationId
);
uuid_id!(
    /// An evaluation's id.
    EvaluationId
);

uuid_id!(
    /// An evaluation report's id.
    ReportId
);
uuid_id!(
    /// One run (generated report) of an evaluation report.
    ReportRunId
);
uuid_id!(
    /// A backfill: an evaluation run over past events.
    BackfillId
);

impl fmt::Display for ProjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
