//! `/api/v1/monitors`: URLs checked every interval (each check a `check_url`
//! job on the I/O queue, started by the workers' scheduler), with their
//! history, uptime and response times over 24 hours and 7 days.

use actix_web::http::header;
use actix_web::{delete, get, patch, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use crunch_domain::{CheckUrlParams, Params};
use crunch_store::monitors::{CheckRow, MonitorView};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use utoipa_actix_web::service_config::ServiceConfig;

/// The longest interval, in seconds (a day).
pub const MAX_INTERVAL_S: u64 = 86_400;

/// A new monitor: a URL check's parameters and how often to run it. The
/// served document states the body kind by kind (`openapi::served`).
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateMonitor {
    /// An http(s) URL, as for a `check_url` job.
    pub url: String,
    /// Seconds between two checks: from the gateway's minimum
    /// (`CRUNCH_MONITOR_MIN_INTERVAL_SECS`, default 30) to 86400.
    pub interval_s: u64,
    pub method: Option<String>,
    pub retries: Option<u32>,
    pub retry_on: Option<Vec<String>>,
    pub timeout_ms: Option<u64>,
}

/// `{"paused": true}` pauses a monitor, `false` resumes it (due at once).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMonitor {
    pub paused: bool,
}

/// One check of a monitor.
#[derive(Debug, Serialize, ToSchema)]
pub struct MonitorCheck {
    pub checked_at: DateTime<Utc>,
    /// The check's job (kept for `CRUNCH_RETENTION_MONITOR_JOBS` after it ended).
    #[schema(value_type = String, format = Uuid)]
    pub job_id: Uuid,
    /// A 2xx answer.
    pub ok: bool,
    /// The answer's status, when there was one.
    pub status: Option<i32>,
    /// Why there was no answer (`dns`, `timeout`, `blocked`, ...), or the
    /// check job's status when it did not run to its end (`failed`).
    pub error: Option<String>,
    /// The check's time, in ms.
    pub total_ms: Option<f64>,
}

impl From<CheckRow> for MonitorCheck {
    fn from(c: CheckRow) -> Self {
        Self { checked_at: c.checked_at, job_id: c.job_id, ok: c.ok, status: c.status, error: c.error, total_ms: c.total_ms }
    }
}

/// A point of the recent history: the response time and whether it was up.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecentCheck {
    pub ms: Option<f64>,
    pub ok: bool,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MonitorState {
    /// The last check got a 2xx answer.
    Up,
    /// The last check did not.
    Down,
    /// No check yet.
    Pending,
    Paused,
}

/// A monitor with its figures. Uptime is the share of checks that were up,
/// in percent; response times are of every check with a time.
#[derive(Debug, Serialize, ToSchema)]
pub struct Monitor {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    pub url: String,
    /// The check's parameters (canonical `check_url` params).
    #[schema(value_type = Object)]
    pub params: serde_json::Value,
    pub interval_s: i32,
    pub paused: bool,
    pub state: MonitorState,
    pub created_at: DateTime<Utc>,
    /// When the next check is due (it starts within a second of it).
    pub next_run_at: DateTime<Utc>,
    pub last_check: Option<LastCheck>,
    pub checks_24h: i64,
    pub checks_7d: i64,
    pub uptime_24h: Option<f64>,
    pub uptime_7d: Option<f64>,
    pub p50_ms_24h: Option<f64>,
    pub p95_ms_24h: Option<f64>,
    pub p50_ms_7d: Option<f64>,
    pub p95_ms_7d: Option<f64>,
    /// The last 30 checks, oldest first.
    pub recent: Vec<RecentCheck>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LastCheck {
    pub checked_at: DateTime<Utc>,
    pub ok: bool,
    pub status: Option<i32>,
    pub error: Option<String>,
}

impl From<MonitorView> for Monitor {
    fn from(m: MonitorView) -> Self {
        let percent = |up: i64, all: i64| (all > 0).then(|| up as f64 * 100.0 / all as f64);
        let last_check = match (m.last_checked_at, m.last_ok) {
            (Some(checked_at), Some(ok)) => Some(LastCheck { checked_at, ok, status: m.last_status, error: m.last_error }),
            _ => None,
        };
        let state = match (&last_check, m.paused) {
            (_, true) => MonitorState::Paused,
            (None, false) => MonitorState::Pending,
            (Some(c), false) if c.ok => MonitorState::Up,
            (Some(_), false) => MonitorState::Down,
        };
        Monitor {
            id: m.id,
            url: m.url,
            params: m.params,
            interval_s: m.interval_s,
            paused: m.paused,
            state,
            created_at: m.created_at,
            next_run_at: m.next_run_at,
            last_check,
            checks_24h: m.checks_24h,
            checks_7d: m.checks_7d,
            uptime_24h: percent(m.up_24h, m.checks_24h),
            uptime_7d: percent(m.up_7d, m.checks_7d),
            p50_ms_24h: m.p50_ms_24h,
            p95_ms_24h: m.p95_ms_24h,
            p50_ms_7d: m.p50_ms_7d,
            p95_ms_7d: m.p95_ms_7d,
            recent: m.recent_ms.into_iter().zip(m.recent_ok).map(|(ms, ok)| RecentCheck { ms, ok }).collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MonitorList {
    pub items: Vec<Monitor>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MonitorCheckPage {
    pub items: Vec<MonitorCheck>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CheckQuery {
    /// Only checks before this time (the last page's oldest `checked_at`).
    pub before: Option<DateTime<Utc>>,
    /// 1..=500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

fn monitor_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| ApiError::NotFound("monitor"))
}

/// The check's parameters and the interval of a monitor's body, or the 400
/// its first broken rule gets (the same rules and messages as a `check_url`
/// job's parameters).
pub fn parse_monitor(body: &serde_json::Value, limits: &crunch_domain::Limits, min_interval_s: u64) -> Result<(CheckUrlParams, u64), ApiError> {
    let mut check = body.as_object().cloned().ok_or_else(|| ApiError::bad_request("invalid_params", "the body must be an object like {\"url\": \"https://example.com\", \"interval_s\": 60}"))?;
    const FIELDS: [&str; 6] = ["url", "interval_s", "method", "retries", "retry_on", "timeout_ms"];
    if let Some(unknown) = check.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(ApiError::BadRequest {
            code: "invalid_params",
            message: format!("unexpected field '{unknown}'; a monitor has {}", FIELDS.join(", ")),
            field: Some(unknown.clone()),
            details: None,
        });
    }
    let interval = check.remove("interval_s");
    let interval_s = interval
        .as_ref()
        .and_then(crunch_domain::kinds::json_uint)
        .filter(|s| (min_interval_s..=MAX_INTERVAL_S).contains(s))
        .ok_or_else(|| ApiError::BadRequest {
            code: "invalid_params",
            message: format!("interval_s must be an integer from {min_interval_s} to {MAX_INTERVAL_S}"),
            field: Some("interval_s".into()),
            details: None,
        })?;
    let params = CheckUrlParams::parse(&serde_json::Value::Object(check), limits).map_err(|e| {
        // The fields are the body's own, not a job's `params.`.
        let mut err = ApiError::from(e);
        if let ApiError::BadRequest { field: Some(f), message, .. } = &mut err {
            *message = message.replacen(f.as_str(), f.trim_start_matches("params."), 1);
            *f = f.trim_start_matches("params.").to_owned();
        }
        err
    })?;
    Ok((params, interval_s))
}

/// Create a monitor: its URL is checked every `interval_s` seconds from now
/// on (the first check at once), through the same SSRF guard as URL checks.
#[utoipa::path(
    post, path = "/api/v1/monitors", tag = "monitors",
    request_body(content = CreateMonitor, content_type = "application/json"),
    responses(
        (status = 201, description = "Created; checked from now on", body = Monitor),
        (status = 400, description = "Invalid URL, interval or check settings", body = crunch_domain::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = crunch_domain::ErrorBody),
        (status = 409, description = "The key has as many monitors as it may (`CRUNCH_MONITORS_PER_KEY`)", body = crunch_domain::ErrorBody),
        (status = 503, description = "Database unavailable", body = crunch_domain::ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/api/v1/monitors")]
pub async fn create(state: web::Data<AppState>, caller: Caller, body: web::Json<serde_json::Value>) -> Result<HttpResponse, ApiError> {
    let (params, interval_s) = parse_monitor(&body, &state.limits, state.monitors.min_interval_s)?;
    let url = params.url().as_str().to_owned();
    let canonical = params.canonical();
    let most = state.monitors.per_key;
    let pool = state.pool.clone();
    let created = web::block(move || {
        let mut conn = pool.get()?;
        crunch_store::monitors::create(&mut conn, caller.key_id, &url, &canonical, interval_s as i32, most)
    })
    .await??;
    let m = created.ok_or_else(|| ApiError::Conflict(format!("this key has {most} monitors, the most it may have: delete one first")))?;
    Ok(HttpResponse::Created().insert_header((header::LOCATION, format!("/api/v1/monitors/{}", m.id))).json(Monitor::from(m)))
}

/// The caller's monitors, oldest first, with their state and figures.
#[utoipa::path(
    get, path = "/api/v1/monitors", tag = "monitors",
    responses(
        (status = 200, description = "The monitors", body = MonitorList),
        (status = 401, description = "Missing or invalid API key", body = crunch_domain::ErrorBody),
        (status = 503, description = "Database unavailable", body = crunch_domain::ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/monitors")]
pub async fn list(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let pool = state.pool.clone();
    let rows = web::block(move || {
        let mut conn = pool.get()?;
        crunch_store::monitors::list_owned(&mut conn, caller.key_id)
    })
    .await??;
    Ok(HttpResponse::Ok().json(MonitorList { items: rows.into_iter().map(Monitor::from).collect() }))
}

/// One of the caller's monitors.
#[utoipa::path(
    get, path = "/api/v1/monitors/{id}", tag = "monitors",
    params(("id" = Uuid, Path, description = "Monitor id")),
    responses(
        (status = 200, description = "The monitor", body = Monitor),
        (status = 401, description = "Missing or invalid API key", body = crunch_domain::ErrorBody),
        (status = 404, description = "No such monitor for this key", body = crunch_domain::ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/monitors/{id}")]
pub async fn get_one(state: web::Data<AppState>, caller: Caller, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = monitor_id(&id)?;
    let pool = state.pool.clone();
    let found = web::block(move || {
        let mut conn = pool.get()?;
        crunch_store::monitors::get_owned(&mut conn, id, caller.key_id)
    })
    .await??;
    Ok(HttpResponse::Ok().json(Monitor::from(found.ok_or(ApiError::NotFound("monitor"))?)))
}

/// Pause or resume a monitor.
#[utoipa::path(
    patch, path = "/api/v1/monitors/{id}", tag = "monitors",
    params(("id" = Uuid, Path, description = "Monitor id")),
    request_body(content = UpdateMonitor, content_type = "application/json"),
    responses(
        (status = 200, description = "The monitor", body = Monitor),
        (status = 400, description = "Not {\"paused\": true|false}", body = crunch_domain::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = crunch_domain::ErrorBody),
        (status = 404, description = "No such monitor for this key", body = crunch_domain::ErrorBody),
    ),
    security(("bearer" = []))
)]
#[patch("/api/v1/monitors/{id}")]
pub async fn update(state: web::Data<AppState>, caller: Caller, id: web::Path<String>, body: web::Json<UpdateMonitor>) -> Result<HttpResponse, ApiError> {
    let id = monitor_id(&id)?;
    let paused = body.paused;
    let pool = state.pool.clone();
    let found = web::block(move || {
        let mut conn = pool.get()?;
        crunch_store::monitors::set_paused(&mut conn, id, caller.key_id, paused)
    })
    .await??;
    Ok(HttpResponse::Ok().json(Monitor::from(found.ok_or(ApiError::NotFound("monitor"))?)))
}

/// Delete a monitor and its history.
#[utoipa::path(
    delete, path = "/api/v1/monitors/{id}", tag = "monitors",
    params(("id" = Uuid, Path, description = "Monitor id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or invalid API key", body = crunch_domain::ErrorBody),
        (status = 404, description = "No such monitor for this key", body = crunch_domain::ErrorBody),
    ),
    security(("bearer" = []))
)]
#[delete("/api/v1/monitors/{id}")]
pub async fn remove(state: web::Data<AppState>, caller: Caller, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = monitor_id(&id)?;
    let pool = state.pool.clone();
    let deleted = web::block(move || {
        let mut conn = pool.get()?;
        crunch_store::monitors::delete_owned(&mut conn, id, caller.key_id)
    })
    .await??;
    if !deleted {
        return Err(ApiError::NotFound("monitor"));
    }
    Ok(HttpResponse::NoContent().finish())
}

/// A monitor's checks, newest first (kept 8 days).
#[utoipa::path(
    get, path = "/api/v1/monitors/{id}/checks", tag = "monitors",
    params(("id" = Uuid, Path, description = "Monitor id"), CheckQuery),
    responses(
        (status = 200, description = "A page of checks", body = MonitorCheckPage),
        (status = 400, description = "Invalid before or limit", body = crunch_domain::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = crunch_domain::ErrorBody),
        (status = 404, description = "No such monitor for this key", body = crunch_domain::ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/monitors/{id}/checks")]
pub async fn checks(state: web::Data<AppState>, caller: Caller, id: web::Path<String>, q: web::Query<CheckQuery>) -> Result<HttpResponse, ApiError> {
    let id = monitor_id(&id)?;
    let limit = super::limit(q.limit, 100, 500)?;
    let before = q.before;
    let pool = state.pool.clone();
    let rows = web::block(move || {
        let mut conn = pool.get()?;
        crunch_store::monitors::checks(&mut conn, id, caller.key_id, before, limit)
    })
    .await??
    .ok_or(ApiError::NotFound("monitor"))?;
    Ok(HttpResponse::Ok().json(MonitorCheckPage { items: rows.into_iter().map(MonitorCheck::from).collect() }))
}

/// Registers this module's routes with their OpenAPI operations.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create).service(list).service(checks).service(get_one).service(update).service(remove);
}
