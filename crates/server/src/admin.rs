//! The admin commands: each prints one JSON object on stdout.

use domain::ProjectId;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::cli::AdminCommand;
use crate::config::Config;
use crate::wiring;

/// Runs one admin command against the database and returns what it prints.
pub async fn run(config: &Config, command: AdminCommand) -> anyhow::Result<Value> {
    let pool = adapters_postgres::connect(config.require_database_url()?, 2).await?;
    adapters_postgres::migrate(&pool).await?;
    let admin = wiring::admin_service(&pool);
    let output = match command {
        AdminCommand::CreateProject { name } => {
            let project = admin.create_project(&name).await?;
            json!({"id": project.id.0, "name": project.name, "api_token": project.api_token})
        }
        AdminCommand::CreateUser(args) => {
            let user = admin.create_user(&args.email, args.project.map(ProjectId), args.level.as_deref()).await?;
            json!({"id": user.id.0, "uuid": user.uuid, "email": user.email})
        }
        AdminCommand::CreateApiKey(args) => {
            let projects = args.projects.map(|ids| ids.into_iter().map(ProjectId).collect());
            let created = admin.create_api_key(&args.email, &args.scopes, projects, args.label.as_deref()).await?;
            json!({"id": created.id.0, "key": created.token.expose_secret(), "scopes": created.scopes.to_strings()})
        }
        AdminCommand::RotateEncryptionKey => {
            let service = wiring::provider_key_service(config, &pool)?;
            let report = service.reseal_all().await?;
            json!({"examined": report.examined, "resealed": report.resealed})
        }
    };
    pool.close().await;
    Ok(output)
}
