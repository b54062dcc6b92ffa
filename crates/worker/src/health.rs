//! The worker's `/healthz` (process up) and `/readyz` (database and broker).

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::{web, App, HttpResponse, HttpServer};

use crate::Shared;

pub fn spawn(shared: Arc<Shared>) -> anyhow::Result<actix_web::dev::ServerHandle> {
    let listener = TcpListener::bind(&shared.cfg.health_addr)?;
    tracing::info!(addr = %listener.local_addr()?, "health endpoints listening");
    let data = web::Data::from(shared);
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
    tokio::spawn(server);
    Ok(handle)
}

async fn readyz(shared: web::Data<Shared>) -> HttpResponse {
    let pool = shared.pool.clone();
    let database = web::block(move || pool.get().ok().is_some_and(|mut c| crunch_store::pool::ping(&mut c).is_ok()))
        .await
        .unwrap_or(false);
    let broker = shared.bus().is_some();
    let ready = database && broker;
    let body = serde_json::json!({"status": if ready { "ready" } else { "not_ready" }, "database": database, "broker": broker});
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
