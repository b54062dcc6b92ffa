//! `crunch-persister`: the Kafka consumer that stores the items users select.
//!
//! This release provides the service shell (configuration, database pool,
//! migrations, `/healthz` and `/readyz`, graceful shutdown); the Kafka consumer
//! arrives with the I/O + Kafka issue.

use anyhow::Context;
use clap::Args;
use crunch_service::DbArgs;

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address of the health endpoints (`/healthz`, `/readyz`).
    #[arg(long, env = "CRUNCH_PERSISTER_HEALTH_ADDR", default_value = "127.0.0.1:8082")]
    pub health_addr: String,
    #[command(flatten)]
    pub db: DbArgs,
}

/// Serves the health endpoints until `shutdown` resolves.
pub async fn run(cfg: Config, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
    let pool = crunch_store::connect(&cfg.db.pool_config()).context("building the database pool")?;
    let handle = crunch_service::spawn_health_server(&cfg.health_addr, move || {
        let pool = pool.clone();
        Box::pin(async move {
            let database = crunch_service::database_reachable(&pool).await;
            (database, serde_json::json!({"database": database}))
        })
    })
    .with_context(|| format!("serving health endpoints on {}", cfg.health_addr))?;
    shutdown.await;
    tracing::info!("shutting down");
    handle.stop(true).await;
    Ok(())
}
