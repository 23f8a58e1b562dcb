//! The offline-evaluation use case: list an experiment's items.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{
    ExperimentId, ExperimentItem, ExperimentItemsError, ExperimentItemsQuery, ExperimentItemsRequest,
    MAX_EXPERIMENT_ITEMS,
};
use crate::ProjectId;
use crate::ingestion::{AiEventStore, parse_iso8601};

/// Reads offline-evaluation results.
pub struct OfflineEvaluationService {
    events: Arc<dyn AiEventStore>,
}

/// An optional ISO 8601 bound; blank means none.
fn bound(field: &'static str, raw: Option<&str>) -> Result<Option<DateTime<Utc>>, ExperimentItemsError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(raw) => parse_iso8601(raw).map(Some).ok_or(ExperimentItemsError::NotADate { field }),
    }
}

impl OfflineEvaluationService {
    pub fn new(events: Arc<dyn AiEventStore>) -> Self {
        Self { events }
    }

    /// The experiment's items, newest first, at most [`MAX_EXPERIMENT_ITEMS`].
    pub async fn experiment_items(
        &self,
        project: ProjectId,
        request: ExperimentItemsRequest,
    ) -> Result<Vec<ExperimentItem>, ExperimentItemsError> {
        let experiment_id = match request.experiment_id.as_deref() {
            None => return Err(ExperimentItemsError::MissingExperimentId),
            Some(raw) => ExperimentId::parse(raw).ok_or(ExperimentItemsError::BlankExperimentId)?,
        };
        let query = ExperimentItemsQuery {
            experiment_id,
            date_from: bound("date_from", request.date_from.as_deref())?,
            date_to: bound("date_to", request.date_to.as_deref())?,
            limit: MAX_EXPERIMENT_ITEMS,
        };
        Ok(self.events.experiment_items(project, &query).await?)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::RepositoryError;
    use crate::ingestion::MockAiEventStore;

    const PROJECT: ProjectId = ProjectId(3);

    fn request(experiment_id: Option<&str>, date_from: Option<&str>, date_to: Option<&str>) -> ExperimentItemsRequest {
        ExperimentItemsRequest {
            experiment_id: experiment_id.map(str::to_owned),
            date_from: date_from.map(str::to_owned),
            date_to: date_to.map(str::to_owned),
        }
    }

    fn service_never_queried() -> OfflineEvaluationService {
        let mut store = MockAiEventStore::new();
        store.expect_experiment_items().never();
        OfflineEvaluationService::new(Arc::new(store))
    }

    #[tokio::test]
    async fn a_missing_or_blank_experiment_id_is_invalid_and_named() {
        let service = service_never_queried();
        for id in [None, Some(""), Some("   ")] {
            let error = service.experiment_items(PROJECT, request(id, None, None)).await.unwrap_err();
            assert!(
                matches!(error, ExperimentItemsError::MissingExperimentId | ExperimentItemsError::BlankExperimentId),
                "{id:?}: {error:?}"
            );
        }
    }

    #[tokio::test]
    async fn unparsable_dates_are_invalid_and_named() {
        let service = service_never_queried();
        let error = service.experiment_items(PROJECT, request(Some("exp"), Some("last week"), None)).await.unwrap_err();
        assert!(matches!(error, ExperimentItemsError::NotADate { field: "date_from" }));
        let error =
            service.experiment_items(PROJECT, request(Some("exp"), None, Some("2026-02-30"))).await.unwrap_err();
        assert!(matches!(error, ExperimentItemsError::NotADate { field: "date_to" }));
    }

    #[tokio::test]
    async fn the_query_is_trimmed_bounded_and_scoped_to_the_project() {
        let mut store = MockAiEventStore::new();
        store
            .expect_experiment_items()
            .withf(|project, query| {
                *project == PROJECT
                    && query.experiment_id.as_str() == "exp-1"
                    && query.date_from == Some(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap())
                    && query.date_to == Some(Utc.with_ymd_and_hms(2026, 1, 31, 12, 0, 0).unwrap())
                    && query.limit == MAX_EXPERIMENT_ITEMS
            })
            .times(1)
            .returning(|_, _| Ok(vec![]));
        let service = OfflineEvaluationService::new(Arc::new(store));

        let items = service
            .experiment_items(PROJECT, request(Some(" exp-1 "), Some("2026-01-01"), Some("2026-01-31T12:00:00Z")))
            .await
            .unwrap();

        assert!(items.is_empty());
    }

    #[tokio::test]
    async fn empty_dates_mean_no_bound() {
        let mut store = MockAiEventStore::new();
        store
            .expect_experiment_items()
            .withf(|_, query| query.date_from.is_none() && query.date_to.is_none())
            .times(1)
            .returning(|_, _| Ok(vec![]));
        let service = OfflineEvaluationService::new(Arc::new(store));

        service.experiment_items(PROJECT, request(Some("exp"), Some(""), Some(" "))).await.unwrap();
    }

    #[tokio::test]
    async fn a_storage_failure_is_unexpected() {
        let mut store = MockAiEventStore::new();
        store.expect_experiment_items().returning(|_, _| Err(RepositoryError::new(anyhow::anyhow!("timeout"))));
        let service = OfflineEvaluationService::new(Arc::new(store));

        let error = service.experiment_items(PROJECT, request(Some("exp"), None, None)).await.unwrap_err();

        assert!(matches!(error, ExperimentItemsError::Unexpected(_)));
    }
}
