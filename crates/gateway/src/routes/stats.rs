//! `GET /api/v1/stats/jobs`: the caller's jobs that ended, minute by minute,
//! per kind (the dashboard's charts).

use actix_web::{get, web, HttpResponse};
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use crunch_domain::JobKind;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use utoipa_actix_web::service_config::ServiceConfig;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// How far back, in minutes: 1..=1440 (default 60).
    #[param(minimum = 1, maximum = 1440)]
    pub minutes: Option<i64>,
}

/// One minute of one kind. Minutes in which none of the kind's jobs ended
/// are left out.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatsPoint {
    /// The minute's start.
    pub t: DateTime<Utc>,
    pub succeeded: i64,
    /// Failed or cancelled.
    pub failed: i64,
    /// Jobs that ended, per second over the minute.
    pub per_s: f64,
    /// Median time from submission to the end, in ms.
    pub p50_ms: f64,
    /// 99th percentile of the same, in ms.
    pub p99_ms: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatsSeries {
    pub kind: JobKind,
    pub points: Vec<StatsPoint>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobStats {
    /// The first minute covered (whole minutes, UTC).
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub step_s: u32,
    /// One series per kind with jobs that ended in the window, in kind order.
    pub series: Vec<StatsSeries>,
}

/// The caller's jobs that ended in the last `minutes`, per kind and minute:
/// how many, how many per second, and the p50 and p99 time from submission
/// to the end. Shards of a split job count once, as their job.
#[utoipa::path(
    get, path = "/api/v1/stats/jobs", tag = "jobs", params(StatsQuery),
    responses(
        (status = 200, description = "Jobs that ended, by kind and minute", body = JobStats),
        (status = 400, description = "Invalid minutes", body = crunch_domain::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = crunch_domain::ErrorBody),
        (status = 503, description = "Database unavailable", body = crunch_domain::ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/stats/jobs")]
pub async fn job_stats(state: web::Data<AppState>, caller: Caller, q: web::Query<StatsQuery>) -> Result<HttpResponse, ApiError> {
    let minutes = q.minutes.unwrap_or(60);
    if !(1..=1440).contains(&minutes) {
        return Err(ApiError::bad_request("invalid_query", "minutes must be between 1 and 1440"));
    }
    let until = Utc::now();
    let since = (until - TimeDelta::minutes(minutes - 1)).duration_trunc(TimeDelta::minutes(1)).unwrap_or(until);
    let pool = state.pool.clone();
    let rows = web::block(move || {
        let mut conn = pool.get()?;
        crunch_store::jobs::minutes_of_jobs(&mut conn, caller.key_id, since)
    })
    .await??;
    let mut series: Vec<StatsSeries> = Vec::new();
    for r in rows {
        // A kind this gateway does not know (a newer worker's) is left out.
        let Ok(kind) = r.kind.parse::<JobKind>() else { continue };
        let point = StatsPoint {
            t: r.minute,
            succeeded: r.succeeded,
            failed: r.failed,
            per_s: (r.succeeded + r.failed) as f64 / 60.0,
            p50_ms: r.p50_ms,
            p99_ms: r.p99_ms,
        };
        match series.iter_mut().find(|s| s.kind == kind) {
            Some(s) => s.points.push(point),
            None => series.push(StatsSeries { kind, points: vec![point] }),
        }
    }
    series.sort_by_key(|s| JobKind::ALL.iter().position(|k| *k == s.kind));
    Ok(HttpResponse::Ok().json(JobStats { since, until, step_s: 60, series }))
}

/// Registers this module's routes with their OpenAPI operations.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(job_stats);
}
