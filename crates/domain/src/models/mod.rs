//! Which models a provider (and a key) offers for evaluations.

mod catalog;
mod service;

pub use catalog::{TrialModels, curated_models, default_model};
pub use service::{ListModelsError, ModelEntry, ModelsService};
