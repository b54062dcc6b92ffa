//! `/api/v1/jobs`: submit, read, list, cancel.

use actix_web::http::header;
use actix_web::{delete, get, post, web, HttpResponse};
use crunch_domain::{EventType, Job, JobEvent, JobKind, JobMessage, JobSpec, JobStatus};
use crunch_store::jobs::{Cancelled, ListFilter, Submission, Submitted};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use utoipa_actix_web::service_config::ServiceConfig;

/// A job submission.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    /// One of the job kinds, e.g. `factorize`.
    #[schema(example = "factorize")]
    pub kind: String,
    /// The kind's parameters; `factorize`: `{"n": "<decimal>"}`;
    /// `primes`: `{"from": 0, "to": 1000, "mode": "list" | "count"}`.
    #[schema(value_type = Object, example = json!({"n": "1000"}))]
    #[serde(default)]
    pub params: serde_json::Value,
    /// Run again even if an identical job exists (default `false`).
    #[serde(default)]
    pub fresh: bool,
}

/// A page of jobs, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobPage {
    pub items: Vec<Job>,
    /// Cursor for the next (older) page: pass it as `before`; null on the last page.
    pub next: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only jobs of this kind (empty: all).
    pub kind: Option<String>,
    /// Only jobs in this status (empty: all).
    pub status: Option<String>,
    /// Page size, 1..=100 (default 10).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// Cursor from a previous page's `next`.
    pub before: Option<String>,
}

pub const DEFAULT_LIMIT: i64 = 10;
pub const MAX_LIMIT: i64 = 100;

fn location(id: Uuid) -> String {
    format!("/api/v1/jobs/{id}")
}

/// Submit a job.
///
/// Validates, stores the job and publishes it to RabbitMQ with a publisher
/// confirm. An identical earlier submission of the same key (same kind and
/// canonical parameters, not failed or cancelled) is returned with 200 instead
/// of creating a new job, unless `fresh` is true.
#[utoipa::path(
    post, path = "/api/v1/jobs", tag = "jobs", request_body = SubmitRequest,
    responses(
        (status = 202, description = "Job accepted", body = Job, headers(("Location" = String, description = "URL of the job"))),
        (status = 200, description = "An identical job exists: it is returned", body = Job),
        (status = 400, description = "Invalid kind, parameters or JSON", body = crunch_domain::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = crunch_domain::ErrorBody),
        (status = 413, description = "Body larger than the limit", body = crunch_domain::ErrorBody),
        (status = 503, description = "Database or broker unavailable; nothing was stored", body = crunch_domain::ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/api/v1/jobs")]
pub async fn submit(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<SubmitRequest>,
) -> Result<HttpResponse, ApiError> {
    let req = body.into_inner();
    let spec = submittable(&state, &req)?;
    let (job, created) = submit_spec(&state, caller.key_id, spec, req.fresh).await?;
    let location = (header::LOCATION, location(job.id));
    Ok(if created { HttpResponse::Accepted() } else { HttpResponse::Ok() }.insert_header(location).json(job))
}

/// The spec of a submission through this route, by the rules every
/// submission meets.
fn submittable(state: &AppState, req: &SubmitRequest) -> Result<JobSpec, ApiError> {
    let spec = JobSpec::parse(&req.kind, &req.params, &state.limits)?;
    if !submittable_kind(spec.kind()) {
        return Err(ApiError::BadRequest {
            code: "invalid_params",
            message: "genes jobs are started through the gene-files API: POST /api/v1/gene-files, upload, then POST /api/v1/gene-files/{id}/uploaded".into(),
            field: Some("kind".into()),
            details: None,
        });
    }
    Ok(spec)
}

/// Whether jobs of `kind` are submitted through this route (gene files have
/// their own).
pub fn submittable_kind(kind: JobKind) -> bool {
    kind != JobKind::Genes
}

/// A submission that passed every rule, as it would be stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct ValidJob {
    pub kind: JobKind,
    /// The parameters in canonical form.
    #[schema(value_type = Object)]
    pub params: serde_json::Value,
}

/// Check a job without submitting it.
///
/// The same rules, limits and messages as `POST /api/v1/jobs`, and nothing
/// is stored: the dashboard checks its forms with it, so that it never keeps
/// a copy of the rules.
#[utoipa::path(
    post, path = "/api/v1/jobs/validate", tag = "jobs", request_body = SubmitRequest,
    responses(
        (status = 200, description = "Valid: the kind and its parameters in canonical form", body = ValidJob),
        (status = 400, description = "Invalid kind, parameters or JSON", body = crunch_domain::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = crunch_domain::ErrorBody),
        (status = 413, description = "Body larger than the limit", body = crunch_domain::ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/api/v1/jobs/validate")]
pub async fn validate(state: web::Data<AppState>, _caller: Caller, body: web::Json<SubmitRequest>) -> Result<HttpResponse, ApiError> {
    let spec = submittable(&state, &body)?;
    Ok(HttpResponse::Ok().json(ValidJob { kind: spec.kind(), params: spec.canonical_params() }))
}

/// Stores a validated job and publishes it (with a publisher confirm), or
/// returns the identical earlier job of the same owner (`created` false).
/// Shared by the submit route and the demo traffic generator.
pub async fn submit_spec(state: &AppState, owner: Uuid, spec: JobSpec, fresh: bool) -> Result<(Job, bool), ApiError> {
    let kind = spec.kind();
    let params = spec.canonical_params();
    let dedup = spec.dedup_key(owner);
    // Fail fast (and write nothing) when the broker is already known to be down.
    let bus = state.bus().ok_or(ApiError::Unavailable("the message broker"))?;
    state.queued_jobs.admit(owner, &state.pool).await?;

    let id = Uuid::new_v4();
    let submission = Submission { id, owner_id: owner, kind, params, dedup_key: dedup, fresh };
    // Group commit: concurrent submissions share one transaction.
    let submitted = state.submissions.call(submission).await?;

    let row = match submitted {
        Submitted::Existing(row) => {
            state.metrics.submitted.with_label_values(&[kind.as_str(), "reused"]).inc();
            return Ok((row.to_job(), false));
        }
        Submitted::Created(row) => row,
    };

    let msg = JobMessage::new(row.id, owner, spec);
    if let Err(e) = bus.publish_job(&msg).await {
        tracing::warn!(job_id = %row.id, error = %e, "publishing failed; discarding the job");
        let pool = state.pool.clone();
        let discarded = web::block(move || {
            let mut conn = pool.get()?;
            crunch_store::jobs::discard_unpublished(&mut conn, id)
        })
        .await;
        if !matches!(discarded, Ok(Ok(true))) {
            // The row stays queued and unpublished: the reconciler publishes it.
            tracing::warn!(job_id = %id, "could not discard the unpublished job; the reconciler will publish it");
        }
        return Err(ApiError::Unavailable("the message broker"));
    }
    // Recorded in batches. If that is lost the job is still safe: the
    // reconciler republishes it and the worker ignores the duplicate.
    let _ = state.published_jobs.send(id);
    state.metrics.submitted.with_label_values(&[kind.as_str(), "created"]).inc();
    let job = row.to_job();
    let event = JobEvent::new(EventType::Queued, job.id, kind, owner, 0.0).at(job.created_at);
    // Best effort, in batches: the submission does not wait for it.
    let _ = state.live_events.send(event);
    Ok((job, true))
}

/// Get a job.
#[utoipa::path(
    get, path = "/api/v1/jobs/{id}", tag = "jobs",
    params(("id" = Uuid, Path, description = "Job id")),
    responses(
        (status = 200, description = "The job", body = Job),
        (status = 401, description = "Missing or invalid API key", body = crunch_domain::ErrorBody),
        (status = 404, description = "No such job for this key", body = crunch_domain::ErrorBody),
        (status = 503, description = "Database unavailable", body = crunch_domain::ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/jobs/{id}")]
pub async fn get_job(state: web::Data<AppState>, caller: Caller, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("job"))?;
    let pool = state.pool.clone();
    let row = web::block(move || {
        let mut conn = pool.get()?;
        crunch_store::jobs::get_owned(&mut conn, id, caller.key_id)
    })
    .await??;
    let row = row.ok_or(ApiError::NotFound("job"))?;
    Ok(HttpResponse::Ok().json(row.to_job()))
}

/// List jobs, newest first, with cursor pagination.
#[utoipa::path(
    get, path = "/api/v1/jobs", tag = "jobs", params(ListQuery),
    responses(
        (status = 200, description = "A page of jobs", body = JobPage),
        (status = 400, description = "Invalid filter, limit or cursor", body = crunch_domain::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = crunch_domain::ErrorBody),
        (status = 503, description = "Database unavailable", body = crunch_domain::ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/jobs")]
pub async fn list_jobs(state: web::Data<AppState>, caller: Caller, q: web::Query<ListQuery>) -> Result<HttpResponse, ApiError> {
    let mut q = q.into_inner();
    let given = |v: Option<String>| v.filter(|s| !s.is_empty());
    (q.kind, q.status) = (given(q.kind), given(q.status));
    let limit = super::limit(q.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let kind = q.kind.as_deref().map(str::parse::<JobKind>).transpose()?;
    let status = q.status.as_deref().map(str::parse::<JobStatus>).transpose().map_err(|m| ApiError::bad_request("invalid_query", m))?;
    let before = match &q.before {
        Some(c) => Some(c.parse::<i64>().ok().filter(|_| c.len() <= 64 && c.bytes().all(|b| b.is_ascii_digit())).ok_or_else(|| {
            ApiError::bad_request("invalid_query", "before must be a cursor returned as `next` by a previous page")
        })?),
        None => None,
    };
    let filter = ListFilter { kind, status, before, limit };
    let pool = state.pool.clone();
    let mut rows = web::block(move || {
        let mut conn = pool.get()?;
        crunch_store::jobs::list(&mut conn, caller.key_id, &filter)
    })
    .await??;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| r.seq.to_string())
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(JobPage { items: rows.iter().map(|r| r.to_job()).collect(), next }))
}

/// Cancel a queued or running job.
///
/// A running job stops at its worker's next checkpoint (within a second).
#[utoipa::path(
    delete, path = "/api/v1/jobs/{id}", tag = "jobs",
    params(("id" = Uuid, Path, description = "Job id")),
    responses(
        (status = 200, description = "Cancelled; the job is returned", body = Job),
        (status = 401, description = "Missing or invalid API key", body = crunch_domain::ErrorBody),
        (status = 404, description = "No such job for this key", body = crunch_domain::ErrorBody),
        (status = 409, description = "The job had already finished", body = crunch_domain::ErrorBody),
        (status = 503, description = "Database unavailable", body = crunch_domain::ErrorBody),
    ),
    security(("bearer" = []))
)]
#[delete("/api/v1/jobs/{id}")]
pub async fn cancel_job(state: web::Data<AppState>, caller: Caller, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("job"))?;
    let pool = state.pool.clone();
    let outcome = web::block(move || {
        let mut conn = pool.get()?;
        crunch_store::jobs::cancel(&mut conn, id, caller.key_id)
    })
    .await??;
    match outcome {
        Cancelled::Done(row) => Ok(HttpResponse::Ok().json(row.to_job())),
        Cancelled::AlreadyFinished(row) => {
            Err(ApiError::Conflict(format!("the job has already finished with status {}", row.status)))
        }
        Cancelled::NotFound => Err(ApiError::NotFound("job")),
    }
}

/// Registers this module's routes with their OpenAPI operations.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(submit).service(validate).service(list_jobs);
    // Other methods on `/jobs/validate` are 405, not a job named "validate".
    cfg.map(|c| {
        c.service(web::resource("/api/v1/jobs/validate").guard(actix_web::guard::Not(actix_web::guard::Post())).to(|| async {
            Err::<HttpResponse, _>(ApiError::MethodNotAllowed(vec!["POST".into()]))
        }))
    });
    cfg.service(get_job).service(cancel_job);
}
