//! Builds each adapter once into one set of domain services; the HTTP state and the
//! worker are both made from that set. Grouped per capability.

use std::sync::Arc;

use adapters_crypto::{AesGcmCipher, HmacLinkSigner, KeyRing};
use adapters_delivery::{Deliveries, DeliveryConfig};
use adapters_hog::{HogEvaluator, RunThreads};
use adapters_http::{ApiServices, AppState, CpuPool, IngestBudget, Readiness};
use adapters_llm::{HttpLlmGateway, HttpStructuredCompletion, PinnedPriceTable};
use adapters_postgres::{
    PgAiEventStore, PgBackfillStore, PgEvaluationConfigRepository, PgEvaluationRepository, PgHousekeeping,
    PgIdentityRepository, PgJobQueue, PgJudgeStore, PgLlmCallLog, PgModelPriceStore, PgPool, PgProviderKeyRepository,
    PgReportEvents, PgReportStore, PgSummaryCache, PgUnitOfWork, ReadConnections,
};
use async_trait::async_trait;
use domain::backfill::{BackfillPorts, BackfillService};
use domain::code::{CodeEvaluator, CodeTrials};
use domain::cost::{ModelPriceService, PriceTable};
use domain::crypto::KeyCipher;
use domain::evaluation::{EvaluationService, EvaluationTransactions};
use domain::evaluation_config::EvaluationConfigService;
use domain::housekeeping::HousekeepingService;
use domain::identity::{AccessService, AdminService};
use domain::ingestion::{BatchTransactions, IngestionService};
use domain::jobs::JobQueue;
use domain::judge::{JudgeConfig, JudgePorts, JudgeService};
use domain::llm::{Llm, LlmUse, LlmUsePorts, SystemLlm};
use domain::models::ModelsService;
use domain::offline_evaluation::OfflineEvaluationService;
use domain::provider_key::{
    ApiVersion, AzureEndpoint, AzureTarget, BaseUrl, CompatibleEndpoint, ExtraHeaders, KeyTransactions,
    ProviderKeyService, ProviderKeyServiceConfig,
};
use domain::reports::targets::TargetPolicy;
use domain::reports::{ReportConfig, ReportPorts, ReportServices, RunTransactions};
use domain::summary::{SharedRateLimiter, SummaryConfig, SummaryPorts, SummaryService};
use domain::unit_of_work::UnitOfWork;
use secrecy::ExposeSecret;

use crate::config::{Config, ConfigError};

struct DatabaseReadiness(PgPool);

#[async_trait]
impl Readiness for DatabaseReadiness {
    async fn is_ready(&self) -> bool {
        adapters_postgres::ping(&self.0).await
    }
}

/// The key ring of `LLMA_ENCRYPTION_KEYS`.
fn key_ring(config: &Config) -> Result<KeyRing, ConfigError> {
    let spec = config.require_encryption_keys()?;
    KeyRing::parse(spec.expose_secret())
        .map_err(|e| ConfigError { variable: "LLMA_ENCRYPTION_KEYS".into(), message: e.to_string() })
}

/// The cipher from `LLMA_ENCRYPTION_KEYS`.
pub fn cipher(config: &Config) -> Result<AesGcmCipher, ConfigError> {
    Ok(AesGcmCipher::new(key_ring(config)?))
}

/// What is made from the encryption keys: the secrets' cipher and the links' signer.
struct Keys {
    cipher: Arc<dyn KeyCipher>,
    signer: Arc<HmacLinkSigner>,
}

impl Keys {
    fn build(config: &Config) -> Result<Self, ConfigError> {
        let ring = key_ring(config)?;
        let signer = Arc::new(HmacLinkSigner::new(&ring));
        Ok(Self { cipher: Arc::new(AesGcmCipher::new(ring)), signer })
    }
}

/// Everything `serve` needs from the configuration, checked before the database is
/// touched, so that a wrong value stops the binary with one line naming the variable.
pub fn check_for_serving(config: &Config) -> Result<(), ConfigError> {
    config.require_database_url()?;
    cipher(config)?;
    system_llm(config)?;
    Ok(())
}

/// The provider-key use cases alone (the admin CLI's rotation).
pub fn provider_key_service(config: &Config, pool: &PgPool) -> anyhow::Result<Arc<ProviderKeyService>> {
    let reads = ReadConnections::new(pool, 1);
    let unit_of_work: Arc<dyn UnitOfWork> = Arc::new(PgUnitOfWork::new(&PgAiEventStore::new(pool.clone())));
    let keys = ProviderKeyCapability::build(config, pool, &reads, &unit_of_work, Keys::build(config)?.cipher)?;
    Ok(keys.service)
}

/// The operator's identity commands.
pub fn admin_service(pool: &PgPool) -> AdminService {
    AdminService::new(Arc::new(PgIdentityRepository::new(pool.clone(), ReadConnections::new(pool, 1))))
}

/// The system LLM as the domain takes it (the Azure endpoint parsed under the endpoint
/// policy).
fn system_llm(config: &Config) -> Result<Option<SystemLlm>, ConfigError> {
    let Some(system) = &config.llm.system else {
        return Ok(None);
    };
    let azure = match &system.azure_endpoint {
        Some(endpoint) if system.provider == domain::provider_key::Provider::AzureOpenai => Some(AzureTarget {
            endpoint: AzureEndpoint::parse(endpoint, config.allow_private_endpoints).map_err(|e| ConfigError {
                variable: "LLMA_SYSTEM_LLM_AZURE_ENDPOINT".into(),
                message: e.to_string(),
            })?,
            api_version: ApiVersion::parse(None).map_err(|rule| ConfigError {
                variable: "LLMA_SYSTEM_LLM_AZURE_ENDPOINT".into(),
                message: format!("the default API version is refused: {rule:?}"),
            })?,
        }),
        _ => None,
    };
    let compatible = match &system.base_url {
        Some(raw) if system.provider == domain::provider_key::Provider::OpenaiCompatible => Some(CompatibleEndpoint {
            base_url: BaseUrl::parse(raw, config.allow_private_endpoints).map_err(|rule| ConfigError {
                variable: "LLMA_SYSTEM_LLM_BASE_URL".into(),
                message: format!("not a usable base URL ({rule:?})"),
            })?,
            extra_headers: ExtraHeaders::default(),
            custom_models: vec![system.model.clone()],
        }),
        _ => None,
    };
    Ok(Some(SystemLlm {
        provider: system.provider,
        api_key: system.api_key.clone(),
        model: system.model.clone(),
        azure,
        compatible,
    }))
}

/// Provider keys: their repository, the gateway that checks them and the service.
struct ProviderKeyCapability {
    repository: Arc<PgProviderKeyRepository>,
    gateway: Arc<HttpLlmGateway>,
    service: Arc<ProviderKeyService>,
}

impl ProviderKeyCapability {
    fn build(
        config: &Config,
        pool: &PgPool,
        reads: &ReadConnections,
        unit_of_work: &Arc<dyn UnitOfWork>,
        cipher: Arc<dyn KeyCipher>,
    ) -> anyhow::Result<Self> {
        let repository = Arc::new(PgProviderKeyRepository::new(pool.clone(), reads.clone()));
        let gateway = Arc::new(HttpLlmGateway::new(config.llm.gateway.clone())?);
        let service = Arc::new(ProviderKeyService::new(
            repository.clone(),
            Arc::new(KeyTransactions::new(unit_of_work.clone())),
            gateway.clone(),
            cipher,
            ProviderKeyServiceConfig { allow_private_endpoints: config.allow_private_endpoints },
        ));
        Ok(Self { repository, gateway, service })
    }
}

/// Every domain service of the process, each adapter built once: what the API serves
/// (its one list is `ApiServices`) and the background work's handlers.
#[derive(Clone)]
pub struct Services {
    /// The HTTP API's services.
    pub api: AppState,
    /// Reports: the scheduler and the handlers of their two job kinds (administration and
    /// pages are in `api`).
    pub reports: ReportServices,
    /// The sweeps of what has expired (a kind of job).
    pub housekeeping: Arc<HousekeepingService>,
    /// The one job table.
    pub jobs: Arc<dyn JobQueue>,
    /// The same table, for the operators' job gauges.
    pub job_table: PgJobQueue,
    /// The one event store (its partition knowledge is shared by every writer).
    pub events: PgAiEventStore,
}

impl Services {
    /// Builds the adapters once and the services on them.
    pub fn build(config: &Config, pool: &PgPool, reads: &ReadConnections) -> anyhow::Result<Self> {
        let secrets = Keys::build(config)?;
        let events = PgAiEventStore::new(pool.clone());
        // Every transaction of the process begins here.
        let unit_of_work: Arc<dyn UnitOfWork> = Arc::new(PgUnitOfWork::new(&events));
        let keys = ProviderKeyCapability::build(config, pool, reads, &unit_of_work, secrets.cipher.clone())?;
        let identity = Arc::new(PgIdentityRepository::new(pool.clone(), reads.clone()));
        let evaluation_repository = Arc::new(PgEvaluationRepository::new(pool.clone()));
        let evaluation_configs = Arc::new(PgEvaluationConfigRepository::new(pool.clone()));
        let event_store = Arc::new(events.clone());
        let job_table = PgJobQueue::new(pool.clone());
        let jobs: Arc<dyn JobQueue> = Arc::new(job_table.clone());

        // What LLM calls and generations cost.
        let price_table: Arc<dyn PriceTable> = Arc::new(PinnedPriceTable::load()?);
        let model_price_store = Arc::new(PgModelPriceStore::new(pool.clone()));

        // The one LLM port, shared by the summary, reports and the judge.
        let judge_store = Arc::new(PgJudgeStore::new(pool.clone()));
        let llm: Arc<dyn Llm> = Arc::new(LlmUse::new(
            LlmUsePorts {
                provider_keys: keys.service.clone(),
                key_repository: keys.repository.clone(),
                evaluation_configs: evaluation_configs.clone(),
                gateway: keys.gateway.clone(),
                completion: Arc::new(HttpStructuredCompletion::new(config.llm.gateway.clone())?),
                llm_calls: Arc::new(crate::telemetry::MeteredLlmCalls(Arc::new(PgLlmCallLog::new(pool.clone())))),
                trial_credits: judge_store.clone(),
                price_table: price_table.clone(),
                project_prices: model_price_store.clone(),
            },
            system_llm(config)?,
            config.llm.trial_models.clone(),
        ));

        // Evaluations and their settings.
        let models = Arc::new(ModelsService::new(
            keys.service.clone(),
            keys.gateway.clone(),
            evaluation_configs.clone(),
            config.llm.trial_models.clone(),
        ));
        // Code evaluators run in-process, behind their port, on threads that give memory
        // back as they wait, as the runtime's do as they park.
        let code_threads = RunThreads::new(crate::memory::give_back_thread_memory);
        let code: Arc<dyn CodeEvaluator> = Arc::new(HogEvaluator::on(code_threads));
        let evaluations = Arc::new(EvaluationService::new(
            evaluation_repository.clone(),
            Arc::new(EvaluationTransactions::new(unit_of_work.clone())),
            keys.repository.clone(),
            evaluation_configs.clone(),
            code.clone(),
        ));
        let evaluation_config = Arc::new(EvaluationConfigService::new(evaluation_configs, keys.repository.clone()));

        let model_prices = Arc::new(ModelPriceService::new(model_price_store.clone()));
        // Events in and out, priced.
        let ingestion = IngestionService::new(
            identity.clone(),
            Arc::new(BatchTransactions::new(unit_of_work.clone(), event_store.clone())),
            evaluation_repository.clone(),
        )
        .with_retention(config.ingestion.event_retention);
        let ingestion = Arc::new(match config.ingestion.price_events {
            true => ingestion.with_prices(price_table, model_price_store.clone()),
            false => ingestion,
        });
        let offline_evaluations = Arc::new(OfflineEvaluationService::new(event_store.clone()));

        // The summary and the judge.
        let summaries = Arc::new(SummaryService::new(
            SummaryPorts {
                evaluations: evaluation_repository.clone(),
                events: event_store,
                llm: llm.clone(),
                cache: Arc::new(PgSummaryCache::new(pool.clone())),
                rate_limiter: Arc::new(SharedRateLimiter::new(unit_of_work.clone())),
            },
            SummaryConfig { llm_timeout: config.llm.timeout },
        ));
        let backfill_store = Arc::new(PgBackfillStore::new(pool.clone()));
        let backfills = Arc::new(BackfillService::new(
            BackfillPorts {
                evaluations: evaluation_repository.clone(),
                backfills: backfill_store.clone(),
                targets: backfill_store,
                judged: judge_store.clone(),
                llm: llm.clone(),
                unit_of_work: unit_of_work.clone(),
            },
            config.ingestion.event_retention,
        ));
        let judge = Arc::new(JudgeService::new(
            JudgePorts {
                evaluations: evaluation_repository.clone(),
                store: judge_store.clone(),
                results: judge_store.clone(),
                jobs: jobs.clone(),
                llm: llm.clone(),
                unit_of_work: unit_of_work.clone(),
                code: code.clone(),
            },
            JudgeConfig { llm_timeout: config.llm.timeout, retention: config.ingestion.event_retention },
        ));
        let reports = reports(
            config,
            pool,
            ReportDependencies {
                unit_of_work: unit_of_work.clone(),
                evaluation_repository,
                jobs: jobs.clone(),
                llm,
                secrets,
            },
        )?;

        let api = AppState::new(ApiServices {
            access: Arc::new(AccessService::new(identity)),
            provider_keys: keys.service,
            models,
            evaluations,
            evaluation_config,
            ingestion,
            offline_evaluations,
            summaries,
            judge,
            backfills,
            code_trials: Arc::new(CodeTrials::new(code, judge_store)),
            model_prices,
            reports: reports.admin.clone(),
            report_pages: reports.pages.clone(),
            readiness: Arc::new(DatabaseReadiness(pool.clone())),
            cpu: CpuPool::per_core(),
            ingest_budget: IngestBudget::new(
                config.ingestion.memory_limit_mb * 1024 * 1024,
                config.ingestion.memory_wait,
            ),
            ingest_body_timeout: config.ingestion.body_timeout,
            api_body_timeout: config.http.api_body_timeout,
        });
        Ok(Self {
            api,
            reports,
            housekeeping: Arc::new(
                HousekeepingService::new(Arc::new(PgHousekeeping::new(pool.clone())))
                    .with_retention(config.ingestion.event_retention),
            ),
            jobs,
            job_table,
            events,
        })
    }
}

/// What reports share with the other capabilities.
struct ReportDependencies {
    unit_of_work: Arc<dyn UnitOfWork>,
    evaluation_repository: Arc<PgEvaluationRepository>,
    jobs: Arc<dyn JobQueue>,
    llm: Arc<dyn Llm>,
    secrets: Keys,
}

/// Reports: their store, event reads, delivery adapters and the service.
fn reports(config: &Config, pool: &PgPool, shared: ReportDependencies) -> anyhow::Result<ReportServices> {
    let store = Arc::new(PgReportStore::new(pool.clone()));
    let delivery = Deliveries::new(DeliveryConfig {
        smtp: config.reports.smtp.clone(),
        allow_private: config.allow_private_endpoints,
    })?;
    Ok(ReportServices::new(
        ReportPorts {
            reports: store.clone(),
            runs: store,
            run_writes: Arc::new(RunTransactions::new(shared.unit_of_work)),
            events: Arc::new(PgReportEvents::new(pool.clone())),
            evaluations: shared.evaluation_repository,
            jobs: shared.jobs,
            llm: shared.llm,
            cipher: shared.secrets.cipher,
            signer: shared.secrets.signer,
            delivery: Arc::new(crate::telemetry::MeteredDelivery(Arc::new(delivery))),
        },
        ReportConfig {
            public_url: config.http.public_url.clone(),
            targets: TargetPolicy {
                allow_private: config.allow_private_endpoints,
                slack_webhook_base: config.reports.slack_webhook_base.clone(),
            },
            delivery_retry_base: config.reports.delivery_retry_base,
            llm_timeout: config.llm.timeout,
        },
    ))
}
