//! `/api/environments/{project_id}/evaluations/`: evaluation CRUD with soft delete.

mod command;
mod dto;
mod handlers;

pub use dto::{
    ConditionBody, ConditionDto, EvaluationBody, EvaluationDto, EvaluationListItem, EvaluationSummaryDto,
    JudgeConfigBody, JudgeConfigDto, ModelConfigurationBody, ModelConfigurationDto, PropertyFilterBody,
    PropertyFilterDto,
};
pub(crate) use handlers::*;
