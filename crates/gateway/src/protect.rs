//! Protection against abusive or broken clients: per-key rate limits, a
//! limit per client address on database lookups of unknown keys, and
//! request timeouts (headers, whole bodies, stalled bodies).
//!
//! - Rate limits are a token bucket (GCRA, the `governor` crate) per API key,
//!   per gateway replica: `CRUNCH_RATE_LIMIT_PER_SEC` requests a second on
//!   average with bursts of `CRUNCH_RATE_LIMIT_BURST`; over it: 429
//!   `rate_limited` with `Retry-After`. With N replicas behind a round-robin
//!   balancer a key gets up to N times the rate.
//! - Headers must arrive within `CRUNCH_HEADER_TIMEOUT_MS` (actix closes the
//!   connection with 408).
//! - A body must keep moving: no gap between chunks longer than
//!   `CRUNCH_BODY_IDLE_TIMEOUT_SECS`; a JSON body (anything but an upload)
//!   must be complete within `CRUNCH_BODY_TIMEOUT_SECS`. Either: 408
//!   `request_timeout`. Uploads instead must keep an average of
//!   `CRUNCH_UPLOAD_MIN_BYTES_PER_SEC` once they have run that long: a 2 GiB
//!   file on a slow link may take long, but neither stall nor trickle.

use std::io;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::time::{Duration, Instant};

use actix_web::dev::{Payload, ServiceRequest};
use actix_web::error::PayloadError;
use actix_web::HttpMessage;
use bytes::Bytes;
use clap::Args;
use futures::{Stream, StreamExt};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use uuid::Uuid;

use crate::error::ApiError;

/// Rate-limit and timeout settings.
#[derive(Debug, Clone, Args)]
pub struct ProtectArgs {
    /// Requests per second each API key may make, on average, to one gateway
    /// replica (0 = no limit).
    #[arg(long, env = "CRUNCH_RATE_LIMIT_PER_SEC", default_value_t = Self::DEFAULT.rate_limit_per_sec)]
    pub rate_limit_per_sec: u32,
    /// Requests a key may make at once above the average rate.
    #[arg(long, env = "CRUNCH_RATE_LIMIT_BURST", default_value_t = Self::DEFAULT.rate_limit_burst)]
    pub rate_limit_burst: u32,
    /// Time for a client to send the request line and headers, in ms.
    #[arg(long, env = "CRUNCH_HEADER_TIMEOUT_MS", default_value_t = Self::DEFAULT.header_timeout_ms)]
    pub header_timeout_ms: u64,
    /// Longest pause between two pieces of a request body, in seconds.
    #[arg(long, env = "CRUNCH_BODY_IDLE_TIMEOUT_SECS", default_value_t = Self::DEFAULT.body_idle_timeout_secs)]
    pub body_idle_timeout_secs: u64,
    /// Time for a whole JSON request body, in seconds (uploads: idle rule only).
    #[arg(long, env = "CRUNCH_BODY_TIMEOUT_SECS", default_value_t = Self::DEFAULT.body_timeout_secs)]
    pub body_timeout_secs: u64,
    /// Uploads: the lowest average rate, in bytes a second, an upload may
    /// keep once it has run for CRUNCH_BODY_TIMEOUT_SECS (a trickle that never
    /// stalls would otherwise hold a connection for ever; 0 = no floor).
    #[arg(long, env = "CRUNCH_UPLOAD_MIN_BYTES_PER_SEC", default_value_t = Self::DEFAULT.upload_min_bytes_per_sec)]
    pub upload_min_bytes_per_sec: u64,
    /// Event WebSockets one API key may hold open on one gateway replica
    /// (over it: 429 `too_many_sockets`).
    #[arg(long, env = "CRUNCH_MAX_SOCKETS_PER_KEY", default_value_t = Self::DEFAULT.max_sockets_per_key)]
    pub max_sockets_per_key: u32,
    /// Gene-file uploads one API key may have in progress at once on one
    /// gateway replica (over it: 429 `too_many_uploads`).
    #[arg(long, env = "CRUNCH_MAX_UPLOADS_PER_KEY", default_value_t = Self::DEFAULT.max_uploads_per_key)]
    pub max_uploads_per_key: u32,
    /// Jobs one API key may have queued or running at once (over it: 429
    /// `too_many_queued_jobs`; 0 = no limit).
    #[arg(long, env = "CRUNCH_MAX_QUEUED_JOBS_PER_KEY", default_value_t = Self::DEFAULT.max_queued_jobs_per_key)]
    pub max_queued_jobs_per_key: i64,
    /// Database lookups of API keys not recently seen, per second, that one
    /// client address may cause (unknown keys cost one each; 0 = no limit).
    #[arg(long, env = "CRUNCH_KEY_LOOKUPS_PER_SEC", default_value_t = Self::DEFAULT.key_lookups_per_sec)]
    pub key_lookups_per_sec: u32,
    /// Such lookups a client address may cause at once above the rate.
    #[arg(long, env = "CRUNCH_KEY_LOOKUPS_BURST", default_value_t = Self::DEFAULT.key_lookups_burst)]
    pub key_lookups_burst: u32,
}

impl ProtectArgs {
    /// The documented defaults, for the flags and for `Default`.
    pub const DEFAULT: Self = Self {
        rate_limit_per_sec: 200,
        rate_limit_burst: 400,
        header_timeout_ms: 5_000,
        body_idle_timeout_secs: 10,
        body_timeout_secs: 30,
        upload_min_bytes_per_sec: 8192,
        max_sockets_per_key: 8,
        max_uploads_per_key: 4,
        max_queued_jobs_per_key: 10_000,
        key_lookups_per_sec: 10,
        key_lookups_burst: 50,
    };
}

impl Default for ProtectArgs {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A rate limiter per key: an API key's requests, or a client address's
/// key lookups (None: unlimited).
pub struct RateLimits<K: std::hash::Hash + Eq + Clone = Uuid>(Option<DefaultKeyedRateLimiter<K>>);

impl RateLimits<Uuid> {
    /// Requests per API key.
    pub fn new(args: &ProtectArgs) -> Self {
        Self::with(args.rate_limit_per_sec, args.rate_limit_burst)
    }
}

impl RateLimits<std::net::IpAddr> {
    /// Key lookups per client address.
    pub fn key_lookups(args: &ProtectArgs) -> Self {
        Self::with(args.key_lookups_per_sec, args.key_lookups_burst)
    }
}

impl<K: std::hash::Hash + Eq + Clone> RateLimits<K> {
    fn with(per_sec: u32, burst: u32) -> Self {
        let limiter = NonZeroU32::new(per_sec).map(|rate| {
            let burst = NonZeroU32::new(burst.max(per_sec)).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        Self(limiter)
    }

    /// Takes one from `key`'s allowance, or says in how many seconds to come back.
    pub fn check(&self, key: K) -> Result<(), u64> {
        let Some(limiter) = &self.0 else { return Ok(()) };
        limiter.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs_f64().ceil().max(1.0) as u64
        })
    }

    /// Forgets keys whose bucket is full again (bounded memory).
    pub fn shrink(&self) {
        if let Some(limiter) = &self.0 {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// What an upload route is: only the idle rule applies to its body.
fn is_upload(req: &ServiceRequest) -> bool {
    req.method() == actix_web::http::Method::PUT && req.path().ends_with("/content")
}

/// Replaces the request's body stream with one that fails with a timeout
/// error (`io::ErrorKind::TimedOut`) when the body stalls or takes too long.
pub fn time_body(req: &mut ServiceRequest, args: &ProtectArgs) {
    let has_body = req.headers().contains_key(actix_web::http::header::CONTENT_LENGTH)
        || req.headers().contains_key(actix_web::http::header::TRANSFER_ENCODING);
    if !has_body {
        return;
    }
    let idle = Duration::from_secs(args.body_idle_timeout_secs.max(1));
    let whole = Duration::from_secs(args.body_timeout_secs.max(1));
    let rule = if is_upload(req) {
        Rule::MinRate { after: whole, bytes_per_sec: args.upload_min_bytes_per_sec }
    } else {
        Rule::Deadline(Instant::now() + whole)
    };
    let inner = req.take_payload();
    let timed = timed(inner, idle, rule);
    let boxed: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> = Box::pin(timed);
    req.set_payload(Payload::from(boxed));
}

/// What a body must do besides never stalling.
#[derive(Clone, Copy)]
enum Rule {
    /// Be complete by then (JSON bodies).
    Deadline(Instant),
    /// Keep an average of `bytes_per_sec` once it has run for `after` (uploads).
    MinRate { after: Duration, bytes_per_sec: u64 },
}

fn timed(inner: Payload, idle: Duration, rule: Rule) -> impl Stream<Item = Result<Bytes, PayloadError>> {
    let started = Instant::now();
    let timeout = |why: String| Err(PayloadError::Io(io::Error::new(io::ErrorKind::TimedOut, why)));
    futures::stream::unfold(Some((inner, 0u64)), move |state| async move {
        let (mut inner, received) = state?;
        let mut wait = idle;
        let mut why = "the request body stalled".to_owned();
        if let Rule::Deadline(d) = rule {
            let left = d.saturating_duration_since(Instant::now());
            if left < wait {
                wait = left;
                why = "the request body took too long".into();
            }
        }
        match tokio::time::timeout(wait, inner.next()).await {
            Ok(Some(Ok(chunk))) => {
                let received = received + chunk.len() as u64;
                if let Rule::MinRate { after, bytes_per_sec } = rule {
                    let elapsed = started.elapsed();
                    if bytes_per_sec > 0 && elapsed > after && (received as f64) < bytes_per_sec as f64 * elapsed.as_secs_f64() {
                        return Some((timeout(format!("the upload is slower than {bytes_per_sec} bytes a second on average")), None));
                    }
                }
                Some((Ok(chunk), Some((inner, received))))
            }
            Ok(Some(Err(e))) => Some((Err(e), None)),
            Ok(None) => None,
            Err(_) => Some((timeout(why), None)),
        }
    })
}

/// The timeout error `time_body` puts in a body stream, if `e` is one.
pub fn timed_out(e: &PayloadError) -> Option<String> {
    match e {
        PayloadError::Io(io) if io.kind() == io::ErrorKind::TimedOut => Some(io.to_string()),
        _ => None,
    }
}

/// Refuses a query string carrying a NUL character (`%00`): no parameter may
/// hold one, and PostgreSQL text cannot store one (it would be a 500 later).
pub async fn reject_nul<B: actix_web::body::MessageBody>(
    req: ServiceRequest,
    next: actix_web::middleware::Next<B>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::EitherBody<B>>, actix_web::Error> {
    let q = req.query_string();
    if q.contains('\0') || q.to_ascii_lowercase().contains("%00") {
        let resp = actix_web::ResponseError::error_response(&ApiError::bad_request("invalid_query", "the query string contains a NUL character (%00)"));
        return Ok(req.into_response(resp).map_into_right_body());
    }
    next.call(req).await.map(actix_web::dev::ServiceResponse::map_into_left_body)
}

/// How many queued or running jobs each API key may have (0 = no limit): one
/// key cannot fill the queues ahead of every other. Counted in the database
/// at most once a second per key; in between each accepted submission adds
/// one to the count, so a burst may pass the limit by what one second of the
/// key's rate allows.
pub struct QueuedJobs {
    max: i64,
    counts: std::sync::Mutex<std::collections::HashMap<Uuid, (i64, Instant)>>,
}

impl QueuedJobs {
    const FRESH: Duration = Duration::from_secs(1);

    pub fn new(max: i64) -> Self {
        Self { max, counts: Default::default() }
    }

    /// Admits one more job of `key`, or 429 `too_many_queued_jobs`.
    pub async fn admit(&self, key: Uuid, pool: &crunch_store::PgPool) -> Result<(), ApiError> {
        if self.max <= 0 {
            return Ok(());
        }
        let cached = self.counts.lock().ok().and_then(|c| c.get(&key).filter(|(_, at)| at.elapsed() < Self::FRESH).map(|(n, _)| *n));
        let n = match cached {
            Some(n) => n,
            None => {
                let pool = pool.clone();
                let n = actix_web::web::block(move || {
                    let mut conn = pool.get()?;
                    crunch_store::jobs::unfinished_count(&mut conn, key)
                })
                .await??;
                if let Ok(mut c) = self.counts.lock() {
                    if c.len() > 100_000 {
                        c.retain(|_, (_, at)| at.elapsed() < Self::FRESH);
                    }
                    c.insert(key, (n, Instant::now()));
                }
                n
            }
        };
        if n >= self.max {
            return Err(ApiError::Quota {
                code: "too_many_queued_jobs",
                message: format!("this API key already has {n} jobs queued or running (the limit is {}); wait for some to finish", self.max),
                retry_after_secs: 5,
            });
        }
        if let Ok(mut c) = self.counts.lock() {
            if let Some((count, _)) = c.get_mut(&key) {
                *count += 1;
            }
        }
        Ok(())
    }
}
