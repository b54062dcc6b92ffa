//! `/healthz`, `/readyz`, `/metrics`.

use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`
    pub status: &'static str,
    pub database: bool,
    pub broker: bool,
}

/// Liveness: the process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "Alive")))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// Readiness: the database and the broker are reachable.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, description = "Ready", body = Readiness),
    (status = 503, description = "A dependency is unreachable", body = Readiness),
))]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let database = crunch_service::database_reachable(&state.pool).await;
    let broker = state.bus().is_some();
    let body = Readiness { status: if database && broker { "ready" } else { "not_ready" }, database, broker };
    if database && broker {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Metrics", content_type = "text/plain")))]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let pool = state.pool.clone();
    if let Ok(Ok(counts)) = web::block(move || {
        let mut conn = pool.get()?;
        crunch_store::jobs::counts(&mut conn)
    })
    .await
    {
        state.metrics.jobs.reset();
        for (kind, status, n) in counts {
            state.metrics.jobs.with_label_values(&[&kind, &status]).set(n);
        }
    }
    if let Some(bus) = state.bus() {
        for queue in [bus.config().cpu_queue(), bus.config().io_queue(), bus.config().quick_queue()] {
            if let Ok(Ok(depth)) = tokio::time::timeout(std::time::Duration::from_secs(1), bus.queue_depth(&queue)).await {
                state.metrics.queue_depth.with_label_values(&[&queue]).set(depth as i64);
            }
        }
    }
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(state.metrics.render())
}
