//! `provider_keys/` and `provider_key_validations/`.

mod command;
mod dto;
mod handlers;

pub use dto::{
    AlternativeKeyDto, AssignBody, AssignResultDto, CreatedByDto, DependentConfigsDto, DependentEvaluationDto,
    FieldChangeDto, KeyActivityDto, KeyCheckDto, ProviderKeyDto, TrialEvaluationDto, TrialEvaluationsDto,
};
pub(crate) use handlers::*;
