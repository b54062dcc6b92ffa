//! `GET /api/v1/jobs/{id}/result`: a job's result; for prime lists, a page
//! of primes or the whole list as a stream, read chunk by chunk from the
//! database so the gateway's memory stays flat whatever the list's size.

use actix_web::http::header;
use actix_web::{get, web, HttpRequest, HttpResponse};
use crunch_compute::primes::codec;
use crunch_domain::{JobKind, JobStatus};
use crunch_store::models::JobRow;
use futures::stream;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use utoipa_actix_web::service_config::ServiceConfig;

pub const DEFAULT_PAGE: u64 = 1000;
pub const MAX_PAGE: u64 = 100_000;
/// Chunks fetched per database round trip while streaming (about 256K primes).
const CHUNKS_PER_FETCH: i64 = 4;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ResultQuery {
    /// Index of the first prime (0-based; default 0); past the end, an
    /// empty page.
    pub offset: Option<u64>,
    /// Primes per page (1..=100000, default 1000); for streams, the most to send (default: all).
    #[param(minimum = 1, maximum = 100000)]
    pub limit: Option<u64>,
}

/// A page of a prime list.
#[derive(Debug, Serialize, ToSchema)]
pub struct PrimePage {
    /// The primes, ascending.
    pub items: Vec<u64>,
    /// How many primes the whole list has.
    pub total: u64,
    pub offset: u64,
    pub limit: u64,
    /// `offset` of the next page; null on the last one.
    pub next: Option<u64>,
}

/// Where a list's primes are: (job holding the chunks, how many primes), in order.
type Parts = Vec<(Uuid, u64)>;

fn list_parts(conn: &mut crunch_store::PgConnection, row: &JobRow) -> Result<Option<Parts>, crunch_store::StoreError> {
    let Some(result) = &row.result else { return Ok(None) };
    if row.kind != JobKind::Primes || result.get("mode").and_then(|m| m.as_str()) != Some("list") {
        return Ok(None);
    }
    if let Some(counts) = result.get("shard_counts").and_then(|c| c.as_array()) {
        let shards = crunch_store::jobs::shards_of(conn, row.id)?;
        let counts: Vec<u64> = counts.iter().map(|c| c.as_u64().unwrap_or(0)).collect();
        return Ok(Some(shards.into_iter().map(|s| s.id).zip(counts).collect()));
    }
    Ok(Some(vec![(row.id, result.get("count").and_then(|c| c.as_u64()).unwrap_or(0))]))
}

/// Reads up to `limit` primes starting at global index `offset`, fetching at
/// most `max_chunks` chunks per part (fewer primes than asked means: ask again).
fn read_primes(conn: &mut crunch_store::PgConnection, parts: &Parts, offset: u64, limit: u64, max_chunks: i64) -> Result<Vec<u64>, ApiError> {
    let mut out = Vec::new();
    let mut skip = offset; // index within the current part
    for &(job, count) in parts {
        if skip >= count {
            skip -= count;
            continue;
        }
        let chunks = crunch_store::primes::chunks_from(conn, job, skip as i64, max_chunks)?;
        for c in chunks {
            let ps = codec::decode(c.first_prime as u64, c.count as usize, &c.data)
                .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("corrupt prime chunk of job {job}")))?;
            let local_start = (skip as i64 - c.start_index).max(0) as usize;
            for &p in &ps[local_start.min(ps.len())..] {
                if out.len() as u64 >= limit {
                    return Ok(out);
                }
                out.push(p);
            }
            skip = (c.start_index + c.count as i64) as u64;
        }
        if skip < count {
            // stopped by max_chunks: the caller asks again from here
            return Ok(out);
        }
        skip = 0;
    }
    Ok(out)
}

enum Format {
    Json,
    Text,
    Ndjson,
}

fn format_of(req: &HttpRequest) -> Format {
    let accept = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    if accept.contains("application/x-ndjson") || accept.contains("application/ndjson") {
        Format::Ndjson
    } else if accept.contains("text/plain") {
        Format::Text
    } else {
        Format::Json
    }
}

/// A job's result.
///
/// For a `primes` job in list mode: a page of primes (`?offset=&limit=`), or,
/// with `Accept: text/plain` (one prime per line) or `Accept:
/// application/x-ndjson` (one JSON number per line), the list from `offset`
/// streamed to the end (or to `limit` primes). Other jobs: their `result`.
#[utoipa::path(
    get, path = "/api/v1/jobs/{id}/result", tag = "jobs",
    params(("id" = Uuid, Path, description = "Job id"), ResultQuery),
    responses(
        (status = 200, description = "For a prime list: a page of primes (`PrimePage`), or a stream with Accept text/plain or application/x-ndjson; for other jobs: the job's result object", body = serde_json::Value),
        (status = 400, description = "Invalid offset or limit", body = crunch_domain::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = crunch_domain::ErrorBody),
        (status = 404, description = "No such job for this key", body = crunch_domain::ErrorBody),
        (status = 409, description = "The job has not succeeded (yet)", body = crunch_domain::ErrorBody),
        (status = 503, description = "Database unavailable", body = crunch_domain::ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/jobs/{id}/result")]
pub async fn job_result(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    q: web::Query<ResultQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("job"))?;
    // A page (JSON) holds 1 to MAX_PAGE primes; a stream any number.
    if q.limit == Some(0) || (matches!(format_of(&req), Format::Json) && q.limit.is_some_and(|l| l > MAX_PAGE)) {
        return Err(ApiError::bad_request("invalid_query", format!("limit must be between 1 and {MAX_PAGE}")));
    }
    let pool = state.pool.clone();
    let (row, parts) = web::block(move || -> Result<_, crunch_store::StoreError> {
        let mut conn = pool.get()?;
        let Some(row) = crunch_store::jobs::get_owned(&mut conn, id, caller.key_id)? else { return Ok(None) };
        let parts = list_parts(&mut conn, &row)?;
        Ok(Some((row, parts)))
    })
    .await??
    .ok_or(ApiError::NotFound("job"))?;
    if row.status != JobStatus::Succeeded {
        return Err(ApiError::Conflict(format!("the job has no result: its status is {}", row.status)));
    }
    let Some(parts) = parts else {
        return Ok(HttpResponse::Ok().json(row.result));
    };
    let total: u64 = parts.iter().map(|p| p.1).sum();
    let offset = q.offset.unwrap_or(0);
    match format_of(&req) {
        Format::Json => {
            let limit = q.limit.unwrap_or(DEFAULT_PAGE);
            let pool = state.pool.clone();
            let items = web::block(move || -> Result<Vec<u64>, ApiError> {
                let mut conn = pool.get().map_err(crunch_store::StoreError::from)?;
                let chunks = (limit / codec::CHUNK_PRIMES as u64 + 2) as i64;
                read_primes(&mut conn, &parts, offset, limit, chunks)
            })
            .await??;
            let next = offset.checked_add(limit).filter(|&n| n < total);
            Ok(HttpResponse::Ok().json(PrimePage { items, total, offset, limit, next }))
        }
        fmt => {
            let ndjson = matches!(fmt, Format::Ndjson);
            let end = q.limit.map_or(total, |l| offset.saturating_add(l).min(total));
            let pool = state.pool.clone();
            // State: (next index, done). Each step reads a few chunks and formats them.
            let body = stream::unfold((offset, false), move |(at, done)| {
                let pool = pool.clone();
                let parts = parts.clone();
                async move {
                    if done || at >= end {
                        return None;
                    }
                    let want = (end - at).min(CHUNKS_PER_FETCH as u64 * codec::CHUNK_PRIMES as u64);
                    let got = web::block(move || -> Result<Vec<u64>, ApiError> {
                        let mut conn = pool.get().map_err(crunch_store::StoreError::from)?;
                        read_primes(&mut conn, &parts, at, want, CHUNKS_PER_FETCH + 1)
                    })
                    .await;
                    match got {
                        Ok(Ok(ps)) if !ps.is_empty() => {
                            let mut text = Vec::with_capacity(ps.len() * 12);
                            let mut buf = itoa::Buffer::new();
                            for p in &ps {
                                text.extend_from_slice(buf.format(*p).as_bytes());
                                text.push(b'\n');
                            }
                            let next = at + ps.len() as u64;
                            Some((Ok::<_, actix_web::Error>(web::Bytes::from(text)), (next, false)))
                        }
                        Ok(Ok(_)) => None,
                        Ok(Err(e)) => Some((Err(e.into()), (at, true))),
                        Err(e) => Some((Err(ApiError::from(e).into()), (at, true))),
                    }
                }
            });
            let ctype = if ndjson { "application/x-ndjson" } else { "text/plain; charset=utf-8" };
            Ok(HttpResponse::Ok()
                .content_type(ctype)
                .insert_header(("X-Total-Count", total.to_string()))
                .streaming(body))
        }
    }
}

/// Registers this module's routes with their OpenAPI operations.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(job_result);
}
