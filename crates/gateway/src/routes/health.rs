//! `/healthz`, `/readyz`, `/metrics`.

use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;
use utoipa_actix_web::service_config::ServiceConfig;

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
    let database = crunch_service::database_reachable(&state.pool).await && *state.migrated.borrow();
    let broker = state.bus().is_some();
    let body = Readiness { status: if database && broker { "ready" } else { "not_ready" }, database, broker };
    if database && broker {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Prometheus metrics (text exposition format), for any valid API key
/// (Prometheus sends one with `authorization: {credentials_file: ...}`).
///
/// Behind a key rather than on a separate listener: the gateway's one port
/// is the one that is published, and the key path is the one already guarded
/// against floods (per-address limits before any lookup). The figures are
/// operational, not per user, so any key may read them. The figures read
/// from PostgreSQL (jobs by kind and status) and RabbitMQ (queue depths) are
/// refreshed by at most one request every [`REFRESH`]; other scrapes get the
/// last figures. Every label has a bounded set of values (methods outside
/// the standard ones count as `other`, routes are the API's patterns or
/// `unmatched`). The worker and the persister serve their own `/metrics` on
/// their health listeners, which are never published.
#[utoipa::path(get, path = "/metrics", tag = "operations", security(("bearer" = [])), responses(
    (status = 200, description = "Metrics", content_type = "text/plain"),
    (status = 401, description = "Missing or invalid API key", body = crunch_domain::ErrorBody),
    (status = 429, description = "Over the key's request allowance, or too many key lookups from this address", body = crunch_domain::ErrorBody),
))]
#[get("/metrics")]
pub async fn metrics(_caller: crate::auth::Caller, state: web::Data<AppState>) -> HttpResponse {
    if let Ok(mut last) = state.metrics_refreshed.try_lock() {
        if last.is_none_or(|at| at.elapsed() >= REFRESH) {
            refresh(&state).await;
            *last = Some(std::time::Instant::now());
        }
    }
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(state.metrics.render())
}

/// How often the metrics' database and queue figures are read at most.
pub const REFRESH: std::time::Duration = std::time::Duration::from_secs(2);

async fn refresh(state: &AppState) {
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
        for (queue, depth) in bus.queue_depths([bus.config().cpu_queue(), bus.config().io_queue(), bus.config().quick_queue()]).await {
            state.metrics.queue_depth.with_label_values(&[&queue]).set(i64::from(depth));
        }
    }
}

/// Registers this module's routes with their OpenAPI operations.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(healthz).service(readyz).service(metrics);
}
