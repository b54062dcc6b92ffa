//! `/api/v1/gene-files`: create, upload (streamed, or by presigned URL with
//! the S3 backend), start, read, download the result, page the sequences.

use actix_web::http::header;
use actix_web::{delete, get, post, put, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use crunch_blob::{BlobError, Presign};
use crunch_domain::{Compression, GeneFileSpec, GeneFormat, GenesParams, Job, JobSpec, JobStatus, OnInvalid};
use crunch_store::genes::{GeneFileRow, NewGeneFile};
use crunch_store::models::JobRow;
use futures::{stream, StreamExt};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use utoipa_actix_web::service_config::ServiceConfig;

/// `POST /api/v1/gene-files`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGeneFile {
    /// The file's name, e.g. `genes.fasta` or `reads.fq.gz`.
    #[schema(example = "demo_file.fasta")]
    pub file_name: String,
    /// `fasta`, `csv` or `fastq`; inferred from the name when absent.
    #[schema(value_type = Option<GeneFormat>)]
    pub format: Option<String>,
    /// `gzip` (or `none`); gzip when the name ends in `.gz` and absent.
    pub compression: Option<String>,
    /// What an invalid record does: `skip` (reported, the default) or `fail` (the whole file).
    #[schema(value_type = Option<OnInvalid>)]
    pub on_invalid: Option<String>,
}

/// Where and how to upload.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadTarget {
    /// `PUT`
    pub method: &'static str,
    /// The gateway's upload route (streamed to storage; starts the job when done).
    pub url: String,
    /// With the S3 backend: a presigned URL to PUT the file to directly (then
    /// call `POST .../uploaded`).
    pub presigned_url: Option<String>,
    pub presigned_expires_at: Option<DateTime<Utc>>,
    /// Largest accepted upload in bytes.
    pub max_bytes: u64,
}

/// A gene file and its job.
#[derive(Debug, Serialize, ToSchema)]
pub struct GeneFile {
    pub id: Uuid,
    pub file_name: String,
    pub format: GeneFormat,
    pub compression: Option<Compression>,
    pub on_invalid: OnInvalid,
    /// `awaiting_upload`, then the job's status (`queued`, `running`,
    /// `succeeded`, `failed`, `cancelled`).
    pub status: String,
    pub size_bytes: Option<i64>,
    pub upload: Option<UploadTarget>,
    /// The `genes` job (its `result` holds the file's statistics).
    pub job: Option<Job>,
    /// With the S3 backend, once succeeded: a presigned URL of the result document.
    pub result_url: Option<String>,
    pub created_at: DateTime<Utc>,
    pub uploaded_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GeneFilePage {
    pub items: Vec<GeneFile>,
    pub total: i64,
}

/// One stored sequence.
#[derive(Debug, Serialize, ToSchema)]
pub struct Sequence {
    pub record_index: i64,
    pub line_number: i64,
    pub gene_name: String,
    pub sequence: String,
    pub length: i64,
    pub gc: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SequencePage {
    pub items: Vec<Sequence>,
    pub total: i64,
    pub offset: i64,
    pub limit: i64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SequenceQuery {
    /// Only names containing this (case-insensitive).
    pub name: Option<String>,
    #[param(minimum = 0)]
    pub offset: Option<i64>,
    /// 1..=1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    #[param(minimum = 0)]
    pub offset: Option<i64>,
    /// 1..=100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

fn object_key(id: Uuid) -> String {
    format!("gene-files/{id}/source")
}

async fn view(state: &AppState, row: GeneFileRow, job: Option<JobRow>) -> GeneFile {
    let job = job.map(|j| j.to_job());
    let status = match (&job, row.uploaded_at) {
        (Some(j), _) => j.status.as_str().to_owned(),
        (None, Some(_)) => "uploaded".to_owned(),
        (None, None) => "awaiting_upload".to_owned(),
    };
    let upload_target = if job.is_none() {
        let presigned = state.blobs.presign(Presign::Put, &row.object_key).await.ok().flatten();
        let ttl = chrono::Duration::from_std(state.blobs.presign_ttl()).unwrap_or_default();
        Some(UploadTarget {
            method: "PUT",
            url: format!("/api/v1/gene-files/{}/content", row.id),
            presigned_expires_at: presigned.as_ref().map(|_| Utc::now() + ttl),
            presigned_url: presigned.map(|u| u.to_string()),
            max_bytes: state.genes_max_upload_bytes,
        })
    } else {
        None
    };
    let result_url = match (&row.result_key, job.as_ref().map(|j| j.status)) {
        (Some(key), Some(JobStatus::Succeeded)) => state.blobs.presign(Presign::Get, key).await.ok().flatten().map(|u| u.to_string()),
        _ => None,
    };
    GeneFile {
        id: row.id,
        file_name: row.file_name,
        format: row.format,
        compression: row.compression,
        on_invalid: row.on_invalid,
        status,
        size_bytes: row.size_bytes,
        upload: upload_target,
        job,
        result_url,
        created_at: row.created_at,
        uploaded_at: row.uploaded_at,
    }
}

fn parse_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| ApiError::NotFound("gene file"))
}

async fn load(state: &AppState, id: Uuid, owner: Uuid) -> Result<(GeneFileRow, Option<JobRow>), ApiError> {
    let pool = state.pool.clone();
    web::block(move || {
        let mut conn = pool.get()?;
        crunch_store::genes::get_owned(&mut conn, id, owner)
    })
    .await??
    .ok_or(ApiError::NotFound("gene file"))
}

/// Create a gene file.
///
/// Validates the name, format and compression and returns where to upload
/// the file. Unknown formats get 400.
#[utoipa::path(
    post, path = "/api/v1/gene-files", tag = "gene-files", request_body = CreateGeneFile,
    responses(
        (status = 201, description = "Created; upload to `upload.url` (or `upload.presigned_url`)", body = GeneFile),
        (status = 400, description = "Invalid name, format, compression or policy", body = crunch_domain::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = crunch_domain::ErrorBody),
        (status = 503, description = "Database unavailable", body = crunch_domain::ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/api/v1/gene-files")]
pub async fn create(state: web::Data<AppState>, caller: Caller, body: web::Json<CreateGeneFile>) -> Result<HttpResponse, ApiError> {
    let req = body.into_inner();
    let spec = GeneFileSpec::parse(&req.file_name, req.format.as_deref(), req.compression.as_deref())?;
    let on_invalid = match req.on_invalid.as_deref().map(str::parse::<OnInvalid>) {
        None => OnInvalid::Skip,
        Some(Ok(policy)) => policy,
        Some(Err(())) => {
            return Err(ApiError::BadRequest {
                code: "invalid_field",
                message: "on_invalid must be \"skip\" or \"fail\"".into(),
                field: Some("on_invalid".into()),
                details: None,
            })
        }
    };
    let id = Uuid::new_v4();
    let pool = state.pool.clone();
    let row = web::block(move || {
        let mut conn = pool.get()?;
        let key = object_key(id);
        crunch_store::genes::create(
            &mut conn,
            NewGeneFile {
                id,
                owner_id: caller.key_id,
                file_name: &spec.file_name,
                format: spec.format,
                compression: spec.compression,
                on_invalid,
                object_key: &key,
            },
        )
    })
    .await??;
    let file = view(&state, row, None).await;
    Ok(HttpResponse::Created().insert_header((header::LOCATION, format!("/api/v1/gene-files/{id}"))).json(file))
}

/// Starts (or returns) the file's job once its bytes are in storage.
/// A file claimed for one upload or start (`crunch_store::genes::claim_upload`):
/// a second one at the same time gets 409 instead of a second job that
/// would delete the first one's rows. Kept fresh while held; released when
/// dropped, whatever the outcome (also when the client goes away).
struct Claim {
    id: Uuid,
    token: Uuid,
    pool: crunch_store::PgPool,
    refresh: actix_web::rt::task::JoinHandle<()>,
}

impl Claim {
    /// A claim older than this is another gateway's that died mid-upload.
    const STALE_SECS: i64 = 3600;

    async fn take(state: &AppState, id: Uuid, owner: Uuid) -> Result<Self, ApiError> {
        let token = Uuid::new_v4();
        let pool = state.pool.clone();
        let taken = web::block(move || {
            let mut conn = pool.get()?;
            crunch_store::genes::claim_upload(&mut conn, id, owner, token, Self::STALE_SECS)
        })
        .await??;
        if !taken {
            return Err(ApiError::Conflict("another upload or start of this gene file is in progress, or its job is queued, running or done".into()));
        }
        let pool = state.pool.clone();
        let refresh = actix_web::rt::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                let pool = pool.clone();
                let _ = web::block(move || {
                    let mut conn = pool.get()?;
                    crunch_store::genes::refresh_upload_claim(&mut conn, id, token)
                })
                .await;
            }
        });
        Ok(Self { id, token, pool: state.pool.clone(), refresh })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.refresh.abort();
        let (pool, id, token) = (self.pool.clone(), self.id, self.token);
        actix_web::rt::spawn(async move {
            let _ = web::block(move || {
                let mut conn = pool.get()?;
                crunch_store::genes::release_upload(&mut conn, id, token)
            })
            .await;
        });
    }
}

async fn start_job(state: &AppState, row: GeneFileRow, job: Option<JobRow>, owner: Uuid) -> Result<(GeneFile, bool), ApiError> {
    if let Some(j) = &job {
        if matches!(j.status, JobStatus::Queued | JobStatus::Running | JobStatus::Succeeded) {
            return Ok((view(state, row, job).await, false));
        }
    }
    let size = match state.blobs.size(&row.object_key).await {
        Ok(Some(s)) => s,
        Ok(None) => return Err(ApiError::Conflict("nothing has been uploaded for this gene file yet".into())),
        Err(e) => {
            tracing::warn!(error = %e, "blob storage unavailable");
            return Err(ApiError::Unavailable("blob storage"));
        }
    };
    if size > state.genes_max_upload_bytes {
        let _ = state.blobs.delete(&row.object_key).await;
        return Err(ApiError::PayloadTooLarge(state.genes_max_upload_bytes as usize));
    }
    let pool = state.pool.clone();
    let id = row.id;
    web::block(move || {
        let mut conn = pool.get()?;
        crunch_store::genes::mark_uploaded(&mut conn, id, size as i64)?;
        crunch_store::genes::reset_run(&mut conn, id)
    })
    .await??;
    let (job, _) = crate::routes::jobs::submit_spec(state, owner, JobSpec::Genes(GenesParams::new(id)), true).await?;
    let pool = state.pool.clone();
    let job_id = job.id;
    let (row, job_row) = web::block(move || {
        let mut conn = pool.get()?;
        crunch_store::genes::set_job(&mut conn, id, job_id)?;
        crunch_store::genes::get_owned(&mut conn, id, owner)
    })
    .await??
    .ok_or(ApiError::NotFound("gene file"))?;
    Ok((view(state, row, job_row).await, true))
}

/// Upload the file's content (streamed to storage).
///
/// The body is the file as is (compressed if the file was created as gzip).
/// It goes to blob storage as it arrives, never whole in memory; past
/// `CRUNCH_GENES_MAX_UPLOAD_BYTES` (default 2 GiB) the upload is refused with
/// 413 and nothing is kept. A completed upload starts the job.
#[utoipa::path(
    put, path = "/api/v1/gene-files/{id}/content", tag = "gene-files",
    params(("id" = Uuid, Path, description = "Gene file id")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 202, description = "Stored; the job was started", body = GeneFile),
        (status = 400, description = "An empty or interrupted upload", body = crunch_domain::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = crunch_domain::ErrorBody),
        (status = 404, description = "No such gene file for this key", body = crunch_domain::ErrorBody),
        (status = 409, description = "The file's job is already queued, running or done, or another upload of it is in progress", body = crunch_domain::ErrorBody),
        (status = 413, description = "Larger than the upload limit", body = crunch_domain::ErrorBody),
        (status = 503, description = "Storage, database or broker unavailable", body = crunch_domain::ErrorBody),
    ),
    security(("bearer" = []))
)]
#[put("/api/v1/gene-files/{id}/content")]
pub async fn upload(state: web::Data<AppState>, caller: Caller, id: web::Path<String>, req: HttpRequest, body: web::Payload) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let (row, job) = load(&state, id, caller.key_id).await?;
    if job.as_ref().is_some_and(|j| matches!(j.status, JobStatus::Queued | JobStatus::Running | JobStatus::Succeeded)) {
        return Err(ApiError::Conflict("this gene file's job is already queued, running or done".into()));
    }
    // A declared size past the limit is refused before the file is claimed:
    // a claim is released after the answer, and a retry sent at once would
    // find it still held (409).
    let max = state.genes_max_upload_bytes;
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(ApiError::PayloadTooLarge(max as usize));
    }
    let _upload = state.uploads.take(caller.key_id).ok_or_else(|| ApiError::Quota {
        code: "too_many_uploads",
        message: format!("this API key already has {} uploads in progress", state.uploads.max_per_key),
        retry_after_secs: 5,
    })?;
    let _claim = Claim::take(&state, id, caller.key_id).await?;
    let stalled = std::cell::RefCell::new(None);
    let body = body.inspect(|chunk| {
        if let Err(e) = chunk {
            *stalled.borrow_mut() = crate::protect::timed_out(e);
        }
    });
    match state.blobs.put_stream(&row.object_key, body, max).await {
        Ok(0) => {
            let _ = state.blobs.delete(&row.object_key).await;
            return Err(ApiError::BadRequest { code: "empty_upload", message: "the upload is empty".into(), field: None, details: None });
        }
        Ok(_) => {}
        Err(BlobError::TooLarge(_)) => return Err(ApiError::PayloadTooLarge(max as usize)),
        Err(BlobError::Body(_)) if stalled.borrow().is_some() => {
            return Err(ApiError::RequestTimeout(format!("{}; nothing was kept", stalled.take().unwrap_or_default())))
        }
        Err(BlobError::Body(e)) => {
            return Err(ApiError::BadRequest { code: "upload_interrupted", message: format!("the upload did not complete: {e}"), field: None, details: None })
        }
        Err(e) => {
            tracing::warn!(error = %e, "storing an upload failed");
            return Err(ApiError::Unavailable("blob storage"));
        }
    }
    let (file, _) = start_job(&state, row, job, caller.key_id).await?;
    Ok(HttpResponse::Accepted().json(file))
}

/// Start parsing an uploaded file (after a presigned PUT).
///
/// Checks the upload is there and within the limit, then starts the `genes`
/// job (202); if the file's job is already queued, running or done, returns
/// the file as it is (200).
#[utoipa::path(
    post, path = "/api/v1/gene-files/{id}/uploaded", tag = "gene-files",
    params(("id" = Uuid, Path, description = "Gene file id")),
    responses(
        (status = 202, description = "The job was started", body = GeneFile),
        (status = 200, description = "The job had already been started", body = GeneFile),
        (status = 401, description = "Missing or invalid API key", body = crunch_domain::ErrorBody),
        (status = 404, description = "No such gene file for this key", body = crunch_domain::ErrorBody),
        (status = 409, description = "Nothing uploaded yet, or another upload or start of the file is in progress", body = crunch_domain::ErrorBody),
        (status = 413, description = "The upload is larger than the limit (it was deleted)", body = crunch_domain::ErrorBody),
        (status = 503, description = "Storage, database or broker unavailable", body = crunch_domain::ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/api/v1/gene-files/{id}/uploaded")]
pub async fn uploaded(state: web::Data<AppState>, caller: Caller, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let (row, job) = load(&state, id, caller.key_id).await?;
    if job.as_ref().is_some_and(|j| matches!(j.status, JobStatus::Queued | JobStatus::Running | JobStatus::Succeeded)) {
        return Ok(HttpResponse::Ok().json(view(&state, row, job).await));
    }
    let _claim = Claim::take(&state, id, caller.key_id).await?;
    let (row, job) = load(&state, id, caller.key_id).await?;
    let (file, started) = start_job(&state, row, job, caller.key_id).await?;
    Ok(if started { HttpResponse::Accepted() } else { HttpResponse::Ok() }.json(file))
}

/// Get a gene file, its job and (S3, once done) the result document's URL.
#[utoipa::path(
    get, path = "/api/v1/gene-files/{id}", tag = "gene-files",
    params(("id" = Uuid, Path, description = "Gene file id")),
    responses(
        (status = 200, description = "The gene file", body = GeneFile),
        (status = 401, description = "Missing or invalid API key", body = crunch_domain::ErrorBody),
        (status = 404, description = "No such gene file for this key", body = crunch_domain::ErrorBody),
        (status = 503, description = "Database unavailable", body = crunch_domain::ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/gene-files/{id}")]
pub async fn get_file(state: web::Data<AppState>, caller: Caller, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let (row, job) = load(&state, id, caller.key_id).await?;
    Ok(HttpResponse::Ok().json(view(&state, row, job).await))
}

/// Delete a gene file with its sequences and blobs. It is gone from the API
/// at once (404 from then on); the worker's sweeper removes its rows in
/// small batches and then its blobs. A file whose job is queued or running,
/// or that is being uploaded, is not deleted (409: cancel the job first).
#[utoipa::path(
    delete, path = "/api/v1/gene-files/{id}", tag = "gene-files",
    params(("id" = Uuid, Path, description = "Gene file id")),
    responses(
        (status = 202, description = "Deleted; the rows and blobs are removed in the background", body = DeletedGeneFile),
        (status = 401, description = "Missing or invalid API key", body = crunch_domain::ErrorBody),
        (status = 404, description = "No such gene file for this key", body = crunch_domain::ErrorBody),
        (status = 409, description = "Its job is queued or running, or an upload is in progress", body = crunch_domain::ErrorBody),
        (status = 503, description = "Database unavailable", body = crunch_domain::ErrorBody),
    ),
    security(("bearer" = []))
)]
#[delete("/api/v1/gene-files/{id}")]
pub async fn delete_file(state: web::Data<AppState>, caller: Caller, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let pool = state.pool.clone();
    let owner = caller.key_id;
    let deleted = web::block(move || {
        let mut conn = pool.get()?;
        crunch_store::genes::delete_owned(&mut conn, id, owner, Claim::STALE_SECS)
    })
    .await??;
    match deleted {
        crunch_store::genes::Deleted::Marked => Ok(HttpResponse::Accepted().json(DeletedGeneFile { id, deleted: true })),
        crunch_store::genes::Deleted::NotFound => Err(ApiError::NotFound("gene file")),
        crunch_store::genes::Deleted::Busy => Err(ApiError::Conflict("the gene file's job is queued or running, or an upload is in progress: cancel the job or wait, then delete".into())),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeletedGeneFile {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    pub deleted: bool,
}

/// List the caller's gene files, newest first.
#[utoipa::path(
    get, path = "/api/v1/gene-files", tag = "gene-files", params(PageQuery),
    responses(
        (status = 200, description = "A page of gene files", body = GeneFilePage),
        (status = 400, description = "Invalid offset or limit", body = crunch_domain::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = crunch_domain::ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/gene-files")]
pub async fn list_files(state: web::Data<AppState>, caller: Caller, q: web::Query<PageQuery>) -> Result<HttpResponse, ApiError> {
    let (offset, limit) = super::page(q.offset, q.limit, 20, 100)?;
    let pool = state.pool.clone();
    let (rows, total) = web::block(move || {
        let mut conn = pool.get()?;
        crunch_store::genes::list_owned(&mut conn, caller.key_id, offset, limit)
    })
    .await??;
    let mut items = Vec::with_capacity(rows.len());
    for (row, job) in rows {
        items.push(view(&state, row, job).await);
    }
    Ok(HttpResponse::Ok().json(GeneFilePage { items, total }))
}

async fn succeeded(state: &AppState, id: Uuid, owner: Uuid) -> Result<GeneFileRow, ApiError> {
    let (row, job) = load(state, id, owner).await?;
    match job.as_ref().map(|j| j.status) {
        Some(JobStatus::Succeeded) => Ok(row),
        Some(s) => Err(ApiError::Conflict(format!("the gene file has no result: its job is {s}"))),
        None => Err(ApiError::Conflict("the gene file has no result: it has not been uploaded and parsed".into())),
    }
}

/// Download the result: every stored sequence.
///
/// A JSON array in file order, one object per sequence with its statistics:
/// `[{"line_number", "gene_name", "sequence", "length", "gc"}]`, streamed from
/// the database a page at a time (never built whole in memory); gzip,
/// Brotli or zstd when `Accept-Encoding` asks. The file's totals are in the
/// job's `result`.
#[utoipa::path(
    get, path = "/api/v1/gene-files/{id}/result", tag = "gene-files",
    params(("id" = Uuid, Path, description = "Gene file id")),
    responses(
        (status = 200, description = "The sequences as a JSON array (streamed)"),
        (status = 401, description = "Missing or invalid API key", body = crunch_domain::ErrorBody),
        (status = 404, description = "No such gene file for this key", body = crunch_domain::ErrorBody),
        (status = 409, description = "The file's job has not succeeded", body = crunch_domain::ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/gene-files/{id}/result", wrap = "actix_web::middleware::Compress::default()")]
pub async fn result(state: web::Data<AppState>, caller: Caller, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let row = succeeded(&state, id, caller.key_id).await?;
    let pool = state.pool.clone();
    let file_id = row.id;
    // Pages are read and encoded on blocking threads while the one before
    // is sent.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<web::Bytes, ApiError>>(2);
    tokio::task::spawn_blocking(move || {
        if let Err(e) = crunch_store::genes::result_document(&pool, file_id, |piece| tx.blocking_send(Ok(piece.into())).is_ok()) {
            let _ = tx.blocking_send(Err(ApiError::from(e)));
        }
    });
    let body = stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item.map_err(actix_web::Error::from), rx)) });
    Ok(HttpResponse::Ok().content_type("application/json").streaming(body.boxed_local()))
}

/// Page through the stored sequences, optionally filtered by name.
#[utoipa::path(
    get, path = "/api/v1/gene-files/{id}/sequences", tag = "gene-files",
    params(("id" = Uuid, Path, description = "Gene file id"), SequenceQuery),
    responses(
        (status = 200, description = "A page of sequences in file order", body = SequencePage),
        (status = 400, description = "Invalid offset or limit", body = crunch_domain::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = crunch_domain::ErrorBody),
        (status = 404, description = "No such gene file for this key", body = crunch_domain::ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/gene-files/{id}/sequences")]
pub async fn sequences(state: web::Data<AppState>, caller: Caller, id: web::Path<String>, q: web::Query<SequenceQuery>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let q = q.into_inner();
    let (offset, limit) = super::page(q.offset, q.limit, 100, 1000)?;
    if q.name.as_ref().is_some_and(|n| n.len() > 1000) {
        return Err(ApiError::bad_request("invalid_query", "name must be at most 1000 characters"));
    }
    let _ = load(&state, id, caller.key_id).await?;
    let pool = state.pool.clone();
    let (rows, total) = web::block(move || {
        let mut conn = pool.get()?;
        crunch_store::genes::sequences_page(&mut conn, id, q.name.as_deref().filter(|n| !n.is_empty()), offset, limit)
    })
    .await??;
    let items = rows
        .into_iter()
        .map(|r| Sequence { record_index: r.record_index, line_number: r.line_number, gene_name: r.name, sequence: r.sequence, length: r.length, gc: r.gc })
        .collect();
    Ok(HttpResponse::Ok().json(SequencePage { items, total, offset, limit }))
}

/// Registers this module's routes with their OpenAPI operations.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create).service(list_files).service(upload).service(uploaded).service(result).service(sequences).service(get_file).service(delete_file);
}
