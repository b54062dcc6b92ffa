//! `crunch-persister`: the Kafka consumer that stores the items users select.
//!
//! This release provides the service shell (configuration, database pool,
//! migrations, `/healthz` and `/readyz`, graceful shutdown); the Kafka consumer
//! arrives with the I/O + Kafka issue.

use std::net::TcpListener;

use actix_web::{web, App, HttpResponse, HttpServer};
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
    let listener = TcpListener::bind(&cfg.health_addr).with_context(|| format!("binding {}", cfg.health_addr))?;
    tracing::info!(addr = %listener.local_addr()?, "health endpoints listening");
    let data = web::Data::new(pool);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/healthz", web::get().to(|| async { HttpResponse::Ok().json(serde_json::json!({"status": "ok"})) }))
            .route("/readyz", web::get().to(readyz))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    let handle = server.handle();
    let serving = tokio::spawn(server);
    shutdown.await;
    tracing::info!("shutting down");
    handle.stop(true).await;
    let _ = serving.await;
    Ok(())
}

async fn readyz(pool: web::Data<crunch_store::PgPool>) -> HttpResponse {
    let pool = pool.get_ref().clone();
    let database = web::block(move || pool.get().ok().is_some_and(|mut c| crunch_store::pool::ping(&mut c).is_ok()))
        .await
        .unwrap_or(false);
    let body = serde_json::json!({"status": if database { "ready" } else { "not_ready" }, "database": database});
    if database {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
