//! Offline evaluations (spec section 8): the items of an experiment, read back from the
//! `$ai_evaluation` events that experiment runners send.

mod error;
mod model;
mod service;

pub use error::ExperimentItemsError;
pub use model::{ExperimentId, ExperimentItem, ExperimentItemsQuery, MAX_EXPERIMENT_ITEMS};
pub use service::OfflineEvaluationService;
