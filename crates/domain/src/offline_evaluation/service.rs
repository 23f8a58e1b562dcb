//! The offline-evaluation use case: list an experiment's items.

use std::sync::Arc;

use super::{ExperimentItem, ExperimentItemsError, ExperimentItemsQuery};
use crate::ProjectId;
use crate::ingestion::AiEventStore;

/// Reads offline-evaluation results.
pub struct OfflineEvaluationService {
    events: Arc<dyn AiEventStore>,
}

impl OfflineEvaluationService {
    pub fn new(events: Arc<dyn AiEventStore>) -> Self {
        Self { events }
    }

    /// The experiment's items, newest first, at most the query's limit.
    pub async fn experiment_items(
        &self,
        project: ProjectId,
        query: &ExperimentItemsQuery,
    ) -> Result<Vec<ExperimentItem>, ExperimentItemsError> {
        Ok(self.events.experiment_items(project, query).await?)
    }
}
