//! `ModelPriceStore` on PostgreSQL: table `model_prices` (see
//! `migrations/0013_model_prices.sql`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::cost::{ModelMatch, ModelPriceId, ModelPriceSpec, ModelPriceStore, ProjectPrice, TokenPrices};
use domain::{Page, PageRequest, ProjectId, RepositoryError};
use sqlx::postgres::PgArguments;
use sqlx::query::QueryAs;
use sqlx::{FromRow, PgPool, Postgres};
use uuid::Uuid;

/// The columns every statement returns.
macro_rules! columns {
    () => {
        "id, project_id, model, match, provider, input_cost_per_token, output_cost_per_token, \
         cache_read_cost_per_token, cache_write_cost_per_token, valid_from, created_at, updated_at"
    };
}

const ALL: &str = concat!("SELECT ", columns!(), " FROM model_prices WHERE project_id = $1");
const PAGE: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM model_prices WHERE project_id = $1 ORDER BY valid_from DESC, id DESC LIMIT $2 OFFSET $3"
);
const ONE: &str = concat!("SELECT ", columns!(), " FROM model_prices WHERE project_id = $1 AND id = $2");
const INSERT: &str = concat!(
    "INSERT INTO model_prices (id, project_id, model, match, provider, input_cost_per_token, \
     output_cost_per_token, cache_read_cost_per_token, cache_write_cost_per_token, valid_from) \
     VALUES ($2, $1, $3, $4, $5, $6, $7, $8, $9, COALESCE($10, now())) RETURNING ",
    columns!()
);
const UPDATE: &str = concat!(
    "UPDATE model_prices SET model = $3, match = $4, provider = $5, input_cost_per_token = $6, \
     output_cost_per_token = $7, cache_read_cost_per_token = $8, cache_write_cost_per_token = $9, \
     valid_from = COALESCE($10, valid_from), updated_at = now() WHERE project_id = $1 AND id = $2 RETURNING ",
    columns!()
);

/// A project's model prices.
#[derive(Clone)]
pub struct PgModelPriceStore {
    pool: PgPool,
}

impl PgModelPriceStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[derive(FromRow)]
struct PriceRow {
    id: Uuid,
    project_id: i64,
    model: String,
    #[sqlx(rename = "match")]
    matching: String,
    provider: Option<String>,
    input_cost_per_token: f64,
    output_cost_per_token: f64,
    cache_read_cost_per_token: Option<f64>,
    cache_write_cost_per_token: Option<f64>,
    valid_from: DateTime<Utc>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<PriceRow> for ProjectPrice {
    type Error = RepositoryError;

    fn try_from(row: PriceRow) -> Result<Self, Self::Error> {
        let model = ModelMatch::parse(&row.model, row.matching == "regex")
            .map_err(|_| RepositoryError::new(anyhow::anyhow!("model price {} has an invalid stored model", row.id)))?;
        Ok(ProjectPrice {
            id: row.id,
            project: ProjectId(row.project_id),
            model,
            provider: row.provider,
            prices: TokenPrices {
                input: row.input_cost_per_token,
                output: row.output_cost_per_token,
                cache_read: row.cache_read_cost_per_token,
                cache_write: row.cache_write_cost_per_token,
            },
            valid_from: row.valid_from,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

fn matching(spec: &ModelPriceSpec) -> &'static str {
    if spec.model.is_regex() { "regex" } else { "exact" }
}

/// `statement` with `$1` the project, `$2` the price's id and the spec's fields `$3`..`$10`.
fn with_spec<'q>(
    statement: &'static str,
    project: ProjectId,
    id: ModelPriceId,
    spec: &'q ModelPriceSpec,
) -> QueryAs<'q, Postgres, PriceRow, PgArguments> {
    sqlx::query_as(statement)
        .bind(project.0)
        .bind(id)
        .bind(spec.model.pattern())
        .bind(matching(spec))
        .bind(spec.provider.as_deref())
        .bind(spec.prices.input)
        .bind(spec.prices.output)
        .bind(spec.prices.cache_read)
        .bind(spec.prices.cache_write)
        .bind(spec.valid_from)
}

fn rows(rows: Vec<PriceRow>) -> Result<Vec<ProjectPrice>, RepositoryError> {
    rows.into_iter().map(ProjectPrice::try_from).collect()
}

#[async_trait]
impl ModelPriceStore for PgModelPriceStore {
    async fn all(&self, project: ProjectId) -> Result<Vec<ProjectPrice>, RepositoryError> {
        let found: Vec<PriceRow> =
            sqlx::query_as(ALL).bind(project.0).fetch_all(&self.pool).await.map_err(RepositoryError::new)?;
        rows(found)
    }

    async fn list(&self, project: ProjectId, page: PageRequest) -> Result<Page<ProjectPrice>, RepositoryError> {
        let found: Vec<PriceRow> = sqlx::query_as(PAGE)
            .bind(project.0)
            .bind(page.limit())
            .bind(page.offset())
            .fetch_all(&self.pool)
            .await
            .map_err(RepositoryError::new)?;
        let total: i64 = sqlx::query_scalar("SELECT count(*) FROM model_prices WHERE project_id = $1")
            .bind(project.0)
            .fetch_one(&self.pool)
            .await
            .map_err(RepositoryError::new)?;
        Ok(Page { items: rows(found)?, total, request: page })
    }

    async fn get(&self, project: ProjectId, id: ModelPriceId) -> Result<Option<ProjectPrice>, RepositoryError> {
        let found: Option<PriceRow> = sqlx::query_as(ONE)
            .bind(project.0)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(RepositoryError::new)?;
        found.map(ProjectPrice::try_from).transpose()
    }

    async fn insert(
        &self,
        project: ProjectId,
        id: ModelPriceId,
        spec: &ModelPriceSpec,
    ) -> Result<ProjectPrice, RepositoryError> {
        let row = with_spec(INSERT, project, id, spec).fetch_one(&self.pool).await.map_err(RepositoryError::new)?;
        row.try_into()
    }

    async fn update(
        &self,
        project: ProjectId,
        id: ModelPriceId,
        spec: &ModelPriceSpec,
    ) -> Result<Option<ProjectPrice>, RepositoryError> {
        let row =
            with_spec(UPDATE, project, id, spec).fetch_optional(&self.pool).await.map_err(RepositoryError::new)?;
        row.map(ProjectPrice::try_from).transpose()
    }

    async fn delete(&self, project: ProjectId, id: ModelPriceId) -> Result<bool, RepositoryError> {
        let deleted = sqlx::query("DELETE FROM model_prices WHERE project_id = $1 AND id = $2")
            .bind(project.0)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(RepositoryError::new)?;
        Ok(deleted.rows_affected() == 1)
    }
}
