//! Fixtures: a migrated database with the three repositories, a project with its admin,
//! provider key records with a fake sealed secret, and model configurations written with
//! plain SQL (no repository owns them yet).

use std::ops::Deref;
use std::sync::Arc;

use adapters_postgres::{
    PgAiEventStore, PgEvaluationConfigRepository, PgEvaluationRepository, PgIdentityRepository, PgPool,
    PgProviderKeyRepository, PgUnitOfWork, ReadConnections,
};
use domain::crypto::SealedSecret;
use domain::evaluation::{
    AssignOutcome, EvaluationChanges, EvaluationTransactions, EvaluationWrites, KeyAssignment, NewEvaluation,
    SaveOutcome,
};
use domain::evaluation_config::EvaluationConfigRepository;
use domain::identity::{CreateUserOutcome, IdentityRepository, MembershipLevel, NewUser, Project, ProjectToken, User};
use domain::provider_key::{
    KeyName, KeyState, KeyTransactions, KeyWrites, NewProviderKeyRecord, Provider, ProviderKey, UserSummary,
};
use domain::{EvaluationId, RepositoryError};
use domain::{ProjectId, ProviderKeyId, UserId};
use test_support::TestDatabase;
use uuid::Uuid;

/// The provider-key repository, and the domain's writes over the unit of work on the same
/// database (the transactions whose statements this adapter provides).
pub struct Keys {
    repository: PgProviderKeyRepository,
    /// The domain's transactions over these statements.
    pub writes: KeyTransactions,
}

impl Deref for Keys {
    type Target = PgProviderKeyRepository;

    fn deref(&self) -> &PgProviderKeyRepository {
        &self.repository
    }
}

impl Keys {
    pub async fn insert(&self, key: &NewProviderKeyRecord) -> Result<ProviderKey, RepositoryError> {
        self.writes.insert(key).await
    }
}

/// The evaluation repository with the domain's evaluation writes, as [`Keys`].
pub struct Evaluations {
    repository: PgEvaluationRepository,
    writes: EvaluationTransactions,
}

impl Deref for Evaluations {
    type Target = PgEvaluationRepository;

    fn deref(&self) -> &PgEvaluationRepository {
        &self.repository
    }
}

impl Evaluations {
    pub fn new(pool: &PgPool) -> Self {
        Self {
            repository: PgEvaluationRepository::new(pool.clone()),
            writes: EvaluationTransactions::new(Arc::new(PgUnitOfWork::new(&PgAiEventStore::new(pool.clone())))),
        }
    }

    pub async fn insert(&self, evaluation: &NewEvaluation) -> Result<SaveOutcome, RepositoryError> {
        self.writes.insert(evaluation).await
    }

    pub async fn update(
        &self,
        project: ProjectId,
        id: EvaluationId,
        changes: &EvaluationChanges,
    ) -> Result<SaveOutcome, RepositoryError> {
        self.writes.update(project, id, changes).await
    }

    pub async fn assign_key(
        &self,
        project: ProjectId,
        key: ProviderKeyId,
        assignment: &KeyAssignment,
    ) -> Result<AssignOutcome, RepositoryError> {
        self.writes.assign_key(project, key, assignment).await
    }
}

/// A fresh, migrated database and the repositories under test.
pub struct TestApp {
    pub db: TestDatabase,
    pub identity: PgIdentityRepository,
    pub keys: Keys,
    pub configs: PgEvaluationConfigRepository,
}

impl TestApp {
    /// A new database of this test's own, with every migration applied.
    pub async fn migrated() -> TestApp {
        let db = TestDatabase::create().await;
        adapters_postgres::migrate(&db.pool).await.expect("migrations apply to an empty database");
        TestApp {
            identity: PgIdentityRepository::new(db.pool.clone(), ReadConnections::new(&db.pool, 2)),
            keys: Keys {
                repository: PgProviderKeyRepository::new(db.pool.clone(), ReadConnections::new(&db.pool, 2)),
                writes: KeyTransactions::new(Arc::new(PgUnitOfWork::new(&PgAiEventStore::new(db.pool.clone())))),
            },
            configs: PgEvaluationConfigRepository::new(db.pool.clone()),
            db,
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.db.pool
    }

    /// A new project with a new user who is its admin.
    /// Writes an OpenAI model configuration straight into its table, past every check
    /// but the schema's.
    pub async fn insert_openai_configuration_row(
        &self,
        project: ProjectId,
        key: ProviderKeyId,
    ) -> Result<sqlx::postgres::PgQueryResult, sqlx::Error> {
        sqlx::query(
            "INSERT INTO model_configurations (id, project_id, provider, model, provider_key_id) \
             VALUES ($1, $2, 'openai', 'gpt-4o', $3)",
        )
        .bind(Uuid::now_v7())
        .bind(project.0)
        .bind(key.0)
        .execute(self.pool())
        .await
    }

    /// A migrated database with one project and its admin.
    pub async fn with_tenant() -> (TestApp, Tenant) {
        let app = Self::migrated().await;
        let tenant = app.project_with_admin().await;
        (app, tenant)
    }

    pub async fn project_with_admin(&self) -> Tenant {
        let project = self.project().await;
        let admin = self.user_in(project.id, MembershipLevel::Admin).await;
        Tenant { project, admin }
    }

    /// A new project with a unique public token.
    pub async fn project(&self) -> Project {
        let token = ProjectToken::generate();
        self.identity.create_project("Test project", &token.0).await.expect("create project")
    }

    /// A new user (unique e-mail) who is a member of `project` at `level`.
    pub async fn user_in(&self, project: ProjectId, level: MembershipLevel) -> User {
        let new_user = NewUser { email: unique_email(), membership: Some((project, level)) };
        match self.identity.create_user(&new_user).await.expect("create user") {
            CreateUserOutcome::Created(user) => user,
            other => panic!("creating a user with a fresh e-mail in an existing project gave {other:?}"),
        }
    }

    /// Inserts the built key and returns it as stored.
    pub async fn insert_key(&self, key: KeyBuilder) -> ProviderKey {
        self.keys.insert(&key.build()).await.expect("insert provider key")
    }

    /// The project's active provider key, as the evaluation config repository reads it.
    pub async fn active_key(&self, project: ProjectId) -> Option<ProviderKeyId> {
        self.configs.get(project).await.expect("get evaluation config").active_provider_key
    }

    /// Stores a model configuration of `project` that judges with `key`; returns its id.
    pub async fn add_model_configuration(&self, project: ProjectId, provider: Provider, key: ProviderKeyId) -> Uuid {
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO model_configurations (id, project_id, provider, model, provider_key_id) \
             VALUES ($1, $2, $3, 'test-model', $4)",
        )
        .bind(id)
        .bind(project.0)
        .bind(provider.as_str())
        .bind(key.0)
        .execute(self.pool())
        .await
        .expect("insert model configuration");
        id
    }

    /// The key a model configuration uses now (`None`: trial credits).
    pub async fn model_configuration_key(&self, id: Uuid) -> Option<ProviderKeyId> {
        let key: Option<Uuid> = sqlx::query_scalar("SELECT provider_key_id FROM model_configurations WHERE id = $1")
            .bind(id)
            .fetch_one(self.pool())
            .await
            .expect("read model configuration");
        key.map(ProviderKeyId)
    }
}

/// A project and its admin user.
pub struct Tenant {
    pub project: Project,
    pub admin: User,
}

impl Tenant {
    pub fn id(&self) -> ProjectId {
        self.project.id
    }

    /// The admin as a record's creator reads.
    pub fn admin_summary(&self) -> UserSummary {
        UserSummary {
            id: self.admin.id,
            uuid: self.admin.uuid,
            email: self.admin.email.clone(),
            first_name: String::new(),
            last_name: String::new(),
        }
    }

    /// A key of this project created by its admin: OpenAI, state `ok`, no error, not active.
    pub fn key(&self) -> KeyBuilder {
        KeyBuilder::new(self.id(), self.admin.id)
    }
}

/// Builds a [`NewProviderKeyRecord`]. The sealed secret is fake bytes unique to the key:
/// the repository stores it as an opaque blob, so no real cipher is needed.
pub struct KeyBuilder(NewProviderKeyRecord);

impl KeyBuilder {
    pub fn new(project: ProjectId, created_by: UserId) -> Self {
        let id = ProviderKeyId::generate();
        Self(NewProviderKeyRecord {
            id,
            project,
            provider: Provider::Openai,
            name: KeyName::parse("Production key").expect("valid name"),
            state: KeyState::Ok,
            error_message: None,
            api_key_masked: "sk-...abcd".to_owned(),
            azure_endpoint: None,
            api_version: None,
            compatible: None,
            sealed_secret: SealedSecret(format!("sealed:{id}").into_bytes()),
            created_by,
            set_as_active: false,
        })
    }

    pub fn provider(mut self, provider: Provider) -> Self {
        self.0.provider = provider;
        self
    }

    /// An OpenAI-compatible endpoint's key with these settings.
    pub fn compatible(mut self, settings: domain::provider_key::CompatibleSettings) -> Self {
        self.0.provider = Provider::OpenaiCompatible;
        self.0.compatible = Some(settings);
        self
    }

    pub fn name(mut self, name: &str) -> Self {
        self.0.name = KeyName::parse(name).expect("valid name");
        self
    }

    pub fn state(mut self, state: KeyState) -> Self {
        self.0.state = state;
        self
    }

    pub fn error_message(mut self, message: &str) -> Self {
        self.0.error_message = Some(message.to_owned());
        self
    }

    pub fn azure(mut self, endpoint: &str, api_version: &str) -> Self {
        self.0.provider = Provider::AzureOpenai;
        self.0.azure_endpoint = Some(endpoint.to_owned());
        self.0.api_version = Some(api_version.to_owned());
        self
    }

    pub fn sealed(mut self, bytes: &[u8]) -> Self {
        self.0.sealed_secret = SealedSecret(bytes.to_vec());
        self
    }

    /// Also make it the project's active key.
    pub fn active(mut self) -> Self {
        self.0.set_as_active = true;
        self
    }

    pub fn build(self) -> NewProviderKeyRecord {
        self.0
    }
}

/// An e-mail no other user of the database has.
pub fn unique_email() -> String {
    format!("user-{}@example.com", Uuid::new_v4().simple())
}
