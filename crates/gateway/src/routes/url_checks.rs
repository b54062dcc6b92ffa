//! `GET /api/v1/url-checks`: the history of the caller's URL checks.

use actix_web::{get, web, HttpResponse};
use chrono::{DateTime, Utc};
use crunch_domain::{CheckUrlParams, JobStatus};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use utoipa_actix_web::service_config::ServiceConfig;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UrlCheckQuery {
    /// Only checks of this URL (normalised as at submission: `example.com` is `http://example.com/`).
    pub url: Option<String>,
    /// Checks to skip (default 0).
    #[param(minimum = 0)]
    pub offset: Option<i64>,
    /// Page size, 1..=100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// One URL check.
#[derive(Debug, Serialize, ToSchema)]
pub struct UrlCheck {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    pub url: String,
    /// The job's status (`queued` ... `succeeded`).
    pub status: JobStatus,
    /// When the check finished (or was submitted, while it runs).
    pub checked_at: DateTime<Utc>,
    /// The report: status code, redirects, timings, content type and length,
    /// TLS expiry, or `error: {kind, message}`.
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UrlCheckPage {
    pub items: Vec<UrlCheck>,
    pub total: i64,
}

/// URL-check history, newest first.
#[utoipa::path(
    get, path = "/api/v1/url-checks", tag = "url-checks", params(UrlCheckQuery),
    responses(
        (status = 200, description = "A page of URL checks", body = UrlCheckPage),
        (status = 400, description = "Invalid url, offset or limit", body = crunch_domain::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = crunch_domain::ErrorBody),
        (status = 503, description = "Database unavailable", body = crunch_domain::ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/url-checks")]
pub async fn list_url_checks(state: web::Data<AppState>, caller: Caller, q: web::Query<UrlCheckQuery>) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let (offset, limit) = super::page(q.offset, q.limit, 20, 100)?;
    let url = match super::non_empty(q.url) {
        Some(u) => Some(CheckUrlParams::parse_url(&u, "url")?.to_string()),
        None => None,
    };
    let pool = state.pool.clone();
    let (rows, total) = web::block(move || {
        let mut conn = pool.get()?;
        crunch_store::jobs::page_of_kind(&mut conn, caller.key_id, crunch_domain::JobKind::CheckUrl, url.as_deref().map(|u| ("url", u)), offset, limit)
    })
    .await??;
    let items = rows
        .into_iter()
        .map(|r| UrlCheck {
            id: r.id,
            url: r.params["url"].as_str().unwrap_or_default().to_owned(),
            status: r.status,
            checked_at: r.finished_at.unwrap_or(r.created_at),
            result: r.result,
        })
        .collect();
    Ok(HttpResponse::Ok().json(UrlCheckPage { items, total }))
}

/// Registers this module's routes with their OpenAPI operations.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_url_checks);
}
