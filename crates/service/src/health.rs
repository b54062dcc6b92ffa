//! The health listener of the worker and the persister, and the database
//! check their readiness uses.

use crate::metrics;

/// What a readiness check reports: ready or not, and a JSON body of facts.
pub type Readiness = std::pin::Pin<Box<dyn std::future::Future<Output = (bool, serde_json::Value)>>>;

/// Serves `/healthz` (the process is up), `/readyz` (`ready()` says) and
/// `/metrics` on `addr`, on one thread; returns the handle that stops it.
pub fn spawn_health_server<F>(addr: &str, ready: F, metrics: metrics::ConsumerMetrics) -> anyhow::Result<actix_web::dev::ServerHandle>
where
    F: Fn() -> Readiness + Clone + Send + 'static,
{
    use actix_web::{web, App, HttpResponse, HttpServer};
    let listener = std::net::TcpListener::bind(addr)?;
    tracing::info!(addr = %listener.local_addr()?, "health endpoints listening");
    let server = HttpServer::new(move || {
        let ready = ready.clone();
        let metrics = metrics.clone();
        App::new()
            .route(
                "/metrics",
                web::get().to(move || {
                    let text = metrics.render();
                    async move { HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(text) }
                }),
            )
            .route("/healthz", web::get().to(|| async { HttpResponse::Ok().json(serde_json::json!({"status": "ok"})) }))
            .route(
                "/readyz",
                web::get().to(move || {
                    let check = ready();
                    async move {
                        let (ok, mut body) = check.await;
                        body["status"] = serde_json::json!(if ok { "ready" } else { "not_ready" });
                        if ok {
                            HttpResponse::Ok().json(body)
                        } else {
                            HttpResponse::ServiceUnavailable().json(body)
                        }
                    }
                }),
            )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    Ok(handle)
}

/// `SELECT 1` through the pool, off the async runtime.
pub async fn database_reachable(pool: &crunch_store::PgPool) -> bool {
    let pool = pool.clone();
    tokio::task::spawn_blocking(move || pool.get().ok().is_some_and(|mut c| crunch_store::pool::ping(&mut c).is_ok()))
        .await
        .unwrap_or(false)
}
