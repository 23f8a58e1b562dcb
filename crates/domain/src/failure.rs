//! What kind of failure a use case's error is, read alike for every use case, so whoever
//! answers a caller maps a handful of kinds instead of each error type's variants.

use crate::{FieldError, RepositoryError};

/// The kind of a use-case failure.
#[derive(Debug)]
pub enum Failure<'a> {
    /// What the request addressed is not in the project.
    NotFound,
    /// A value of the command broke a rule.
    Invalid(&'a FieldError),
    /// A port failed; the cause is for the log, not the caller.
    Unexpected(&'a anyhow::Error),
    /// A failure particular to this use case: its answering adapter reads the variant.
    Particular,
}

/// An error of a use case, classified.
pub trait UseCaseError: std::error::Error {
    fn failure(&self) -> Failure<'_>;
}

/// Reading, or acting on, one thing of the project failed.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// It is not in the project.
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Creating or changing one thing failed; nothing was stored or changed.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// The thing to change is not in the project.
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

from_repository_error!(LookupError, SaveError);

/// The cause held by an `Unexpected` variant.
pub(crate) trait Cause {
    fn cause(&self) -> &anyhow::Error;
}

impl Cause for anyhow::Error {
    fn cause(&self) -> &anyhow::Error {
        self
    }
}

impl Cause for RepositoryError {
    fn cause(&self) -> &anyhow::Error {
        &self.0
    }
}

/// `UseCaseError` for error enums whose variants named `NotFound`, `Invalid(FieldError)`
/// and `Unexpected(cause)` mean those kinds; every other variant is `Particular`.
macro_rules! use_case_errors {
    ($($error:ty: [$($kind:ident),*]),* $(,)?) => {$(
        impl crate::failure::UseCaseError for $error {
            #[allow(unreachable_patterns)]
            fn failure(&self) -> crate::failure::Failure<'_> {
                $(
                    if let Some(failure) = use_case_errors!(@kind self, $kind) {
                        return failure;
                    }
                )*
                crate::failure::Failure::Particular
            }
        }
    )*};
    (@kind $self:ident, NotFound) => {
        match $self { Self::NotFound => Some(crate::failure::Failure::NotFound), _ => None }
    };
    (@kind $self:ident, Invalid) => {
        match $self { Self::Invalid(field) => Some(crate::failure::Failure::Invalid(field)), _ => None }
    };
    (@kind $self:ident, Unexpected) => {
        match $self {
            Self::Unexpected(cause) => Some(crate::failure::Failure::Unexpected(crate::failure::Cause::cause(cause))),
            _ => None,
        }
    };
}

use_case_errors!(LookupError: [NotFound, Unexpected], SaveError: [NotFound, Invalid, Unexpected]);
