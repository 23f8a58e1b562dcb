//! `llm_analytics/model_prices/`: a project's own prices, CRUD.

use std::sync::Arc;

use super::{ModelPriceId, ModelPriceInput, ModelPriceStore, ProjectPrice};
use crate::{LookupError, Page, PageRequest, ProjectId, SaveError};

/// A project's model prices.
pub struct ModelPriceService {
    store: Arc<dyn ModelPriceStore>,
}

impl ModelPriceService {
    pub fn new(store: Arc<dyn ModelPriceStore>) -> Self {
        Self { store }
    }

    pub async fn list(&self, project: ProjectId, page: PageRequest) -> Result<Page<ProjectPrice>, LookupError> {
        Ok(self.store.list(project, page).await?)
    }

    pub async fn get(&self, project: ProjectId, id: ModelPriceId) -> Result<ProjectPrice, LookupError> {
        self.store.get(project, id).await?.ok_or(LookupError::NotFound)
    }

    /// Creates a price: `model`, `input_cost_per_token` and `output_cost_per_token` are
    /// required; `valid_from` defaults to now.
    pub async fn create(&self, project: ProjectId, input: ModelPriceInput) -> Result<ProjectPrice, SaveError> {
        let spec = input.spec(None)?;
        Ok(self.store.insert(project, uuid::Uuid::now_v7(), &spec).await?)
    }

    /// Changes the fields sent (a PUT sends them all).
    pub async fn update(
        &self,
        project: ProjectId,
        id: ModelPriceId,
        input: ModelPriceInput,
    ) -> Result<ProjectPrice, SaveError> {
        let stored = self.store.get(project, id).await?.ok_or(SaveError::NotFound)?;
        let spec = input.spec(Some(&stored))?;
        self.store.update(project, id, &spec).await?.ok_or(SaveError::NotFound)
    }

    pub async fn delete(&self, project: ProjectId, id: ModelPriceId) -> Result<(), LookupError> {
        if self.store.delete(project, id).await? { Ok(()) } else { Err(LookupError::NotFound) }
    }
}
