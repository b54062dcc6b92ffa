//! `crunch-gateway`: the REST API, its OpenAPI document and Swagger UI, the
//! live WebSocket events and the dashboard page.
//!
//! # Layout
//! - [`Config`]: every setting (flags, environment, `.env`).
//! - [`Application`]: binds the listener (port 0 in tests) and runs the server.
//! - [`routes`]: one module per resource, each with its OpenAPI annotations.
//! - [`auth`], [`error`], [`state`], [`metrics`], [`openapi`].
//! - [`cli`]: the `keys` and `migrate` subcommands.

pub mod auth;
pub mod cli;
pub mod demo;
pub mod error;
pub mod metrics;
pub mod openapi;
pub mod protect;
pub mod routes;
pub mod state;

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::dev::Service;
use actix_web::{web, App, HttpResponse, HttpServer};
use anyhow::Context;
use clap::Args;
use crunch_bus::{Bus, BusConfig};
use crunch_service::{CoreArgs, KafkaArgs};
use futures::StreamExt;
use tokio::sync::{broadcast, watch};
use utoipa_swagger_ui::SwaggerUi;

use crate::error::ApiError;
use crate::state::{AppState, Dedup};

/// Gateway settings.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "CRUNCH_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: String,
    /// HTTP worker threads (0 = one per core).
    #[arg(long, env = "CRUNCH_HTTP_WORKERS", default_value_t = 0)]
    pub http_workers: usize,
    /// Largest accepted JSON body, in bytes (larger: 413).
    #[arg(long, env = "CRUNCH_MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,
    /// An API key registered (as key "admin") at start-up: the deployment's
    /// first key, given as a Docker secret (CRUNCH_ADMIN_API_KEY_FILE).
    #[arg(long, env = "CRUNCH_ADMIN_API_KEY", hide_env_values = true)]
    pub admin_api_key: Option<crunch_domain::Secret>,
    /// Adminer's address, linked from the dashboard (e.g. http://127.0.0.1:8088
    /// through an SSH tunnel); no link when unset.
    #[arg(long, env = "CRUNCH_ADMINER_URL")]
    pub adminer_url: Option<String>,
    #[command(flatten)]
    pub core: CoreArgs,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub demo: demo::DemoArgs,
    /// The shortest interval a monitor may have, in seconds.
    #[arg(long, env = "CRUNCH_MONITOR_MIN_INTERVAL_SECS", default_value_t = 30)]
    pub monitor_min_interval_secs: u64,
    /// How many monitors one key may have.
    #[arg(long, env = "CRUNCH_MONITORS_PER_KEY", default_value_t = 20)]
    pub monitors_per_key: i64,
    /// Largest gene-file upload, in bytes (larger: 413, nothing kept).
    #[arg(long, env = "CRUNCH_GENES_MAX_UPLOAD_BYTES", default_value_t = 2 << 30)]
    pub genes_max_upload_bytes: u64,
    #[command(flatten)]
    pub blob: crunch_blob::BlobArgs,
    #[command(flatten)]
    pub protect: protect::ProtectArgs,
    /// How long a verified API key is remembered, in seconds (a revoked key
    /// stops working within this time; 0 = check the database every request).
    #[arg(long, env = "CRUNCH_KEY_CACHE_SECS", default_value_t = 5)]
    pub key_cache_secs: u64,
    /// Most job submissions written in one transaction (group commit:
    /// submissions that arrive while a batch is being written form the next).
    #[arg(long, env = "CRUNCH_SUBMIT_BATCH_MAX", default_value_t = 256)]
    pub submit_batch_max: usize,
    /// Submission batches written at once (each holds one database connection).
    #[arg(long, env = "CRUNCH_SUBMIT_BATCH_PARALLEL", default_value_t = 2)]
    pub submit_batch_parallel: usize,
}

pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    /// One reference per app a worker built, plus this one.
    apps: Arc<WorkerApp>,
}

/// Held by every app an HTTP worker builds (as app data, which lives as long
/// as the app and its connections), so that its count says when the workers
/// have dropped theirs.
struct WorkerApp;

impl Application {
    /// Checks the settings and binds the listener first (a bad setting ends
    /// the process at once), then connects what can be connected: a database
    /// or broker that is down is not fatal, the service starts, reports not
    /// ready and keeps retrying (migrations included).
    pub async fn build(cfg: Config) -> anyhow::Result<Self> {
        if let Some(key) = cfg.admin_api_key.as_ref().map(crunch_domain::Secret::expose) {
            anyhow::ensure!(
                key.starts_with(auth::KEY_PREFIX) && key.len() >= auth::KEY_PREFIX.len() + 32,
                "CRUNCH_ADMIN_API_KEY must look like {}<at least 32 hex digits>", auth::KEY_PREFIX
            );
        }
        let blobs = crunch_blob::Blobs::new(&cfg.blob).context("opening blob storage")?;
        let kafka_cfg = cfg.kafka.kafka_config();
        let selections = crunch_bus::kafka::SelectionPublisher::new(&kafka_cfg, Duration::from_millis(cfg.kafka.kafka_produce_timeout_ms))
            .context("creating the Kafka producer")?;
        let listener = TcpListener::bind(&cfg.http_addr).with_context(|| format!("binding {}", cfg.http_addr))?;
        let (pool, migrated) = cfg.core.pool().await.context("building the database pool")?;
        let migrated = register_admin_key(pool.clone(), migrated, cfg.admin_api_key.as_ref().map(|k| k.expose().to_owned())).await;
        // Events arrive a batch at a time (up to 2 x CRUNCH_WORKER_QUICK_BATCH
        // per message pair): room for many batches before a slow WebSocket
        // client lags (it is then told how many it missed).
        let (events_tx, _) = broadcast::channel(65_536);
        let bus_rx = spawn_bus_supervisor(cfg.core.amqp.bus_config(), events_tx.clone());
        let published_jobs = crunch_service::spawn_batch_writer("mark jobs published", pool.clone(), 1000, |c, ids: &[uuid::Uuid]| {
            crunch_store::jobs::mark_published_many(c, ids)
        });
        let live_events = crunch_bus::spawn_event_batcher(bus_rx.clone(), 1000);
        let submissions = crunch_service::GroupCommit::spawn(
            "submit jobs",
            pool.clone(),
            cfg.submit_batch_max,
            cfg.submit_batch_parallel,
            crunch_store::jobs::submit_many,
        );
        let state = web::Data::new(AppState {
            monitors: state::MonitorSettings { min_interval_s: cfg.monitor_min_interval_secs.max(1), per_key: cfg.monitors_per_key },
            live_events,
            submissions,
            blobs,
            genes_max_upload_bytes: cfg.genes_max_upload_bytes,
            selections,
            pool,
            migrated,
            bus: bus_rx,
            limits: cfg.core.limits.limits(),
            events: events_tx,
            metrics: metrics::Metrics::new(),
            rate_limits: protect::RateLimits::new(&cfg.protect),
            keys: auth::KeyCache::new(Duration::from_secs(cfg.key_cache_secs)),
            key_lookup_limits: protect::RateLimits::key_lookups(&cfg.protect),
            key_lookups: tokio::sync::Semaphore::new((cfg.core.db.db_pool_size as usize / 2).max(1)),
            key_lookup_wait: Duration::from_millis(cfg.core.db.db_timeout_ms),
            key_recheck: Duration::from_secs(cfg.key_cache_secs.max(1)),
            sockets: state::Slots::new(cfg.protect.max_sockets_per_key),
            uploads: state::Slots::new(cfg.protect.max_uploads_per_key),
            queued_jobs: protect::QueuedJobs::new(cfg.protect.max_queued_jobs_per_key),
            metrics_refreshed: tokio::sync::Mutex::new(None),
            published_jobs,
        });
        spawn_background(&state, &cfg);
        let ui_config = web::Data::new(routes::dashboard::UiConfig::new(&state.limits, cfg.genes_max_upload_bytes, cfg.adminer_url.clone(), cfg.demo.info()));

        let port = listener.local_addr()?.port();
        let limit = cfg.max_body_bytes;
        let openapi = openapi::document();
        let routes = web::Data::new(RouteTable::from_openapi(&openapi));
        let served = web::Bytes::from(serde_json::to_vec(&openapi::served(&state.limits, state.monitors.min_interval_s))?);
        let protect = cfg.protect.clone();
        let apps = Arc::new(WorkerApp);
        let held = web::Data::from(Arc::clone(&apps));
        let mut server = HttpServer::new(move || {
            let metrics = state.metrics.clone();
            let protect = protect.clone();
            App::new()
                .app_data(held.clone())
                .app_data(state.clone())
                .app_data(ui_config.clone())
                .app_data(routes.clone())
                .app_data(web::JsonConfig::default().limit(limit).error_handler(move |e, _| error::json_error(e, limit)))
                .app_data(web::PayloadConfig::default().limit(limit))
                .app_data(web::QueryConfig::default().error_handler(|e, _| error::query_error(e)))
                .app_data(web::PathConfig::default().error_handler(|e, _| error::path_error(e)))
                .wrap_fn(move |req, srv| {
                    let started = Instant::now();
                    let method = metric_method(req.method());
                    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
                    let metrics = metrics.clone();
                    let fut = srv.call(req);
                    async move {
                        let res = fut.await?;
                        let status = res.status().as_u16().to_string();
                        metrics.requests.with_label_values(&[method, &route, &status]).inc();
                        metrics.durations.with_label_values(&[method, &route]).observe(started.elapsed().as_secs_f64());
                        Ok(res)
                    }
                })
                .wrap(actix_web::middleware::from_fn(protect::reject_nul))
                .wrap_fn(move |mut req, srv| {
                    protect::time_body(&mut req, &protect);
                    srv.call(req)
                })
                .wrap(
                    actix_web::middleware::Logger::new("%{request}xi %s %Dms")
                        .custom_request_replace("request", |req| request_line_for_log(req.method().as_str(), req.uri(), req.version()))
                        .log_target("crunch::http"),
                )
                .configure(|c| routes::configure(&mut utoipa_actix_web::service_config::ServiceConfig::new(c)))
                .route("/api-docs/openapi.json", web::get().to({
                    let served = served.clone();
                    move || {
                        let body = served.clone();
                        async move { HttpResponse::Ok().content_type("application/json").body(body) }
                    }
                }))
                .service(SwaggerUi::new("/docs/{_:.*}").config(utoipa_swagger_ui::Config::from("/api-docs/openapi.json")))
                .route("/docs", web::get().to(|| async { HttpResponse::PermanentRedirect().insert_header(("Location", "/docs/")).finish() }))
                .default_service(web::to(not_found))
        })
        .client_request_timeout(Duration::from_millis(cfg.protect.header_timeout_ms))
        // Without it, a keep-alive client waits for Nagle's algorithm and its
        // own delayed ACK on every response: measured 25 ms median per
        // submission at 50 requests/s, against 3-4 ms on a fresh connection.
        .tcp_nodelay(true)
        .listen(listener)?
        .shutdown_timeout(25);
        if cfg.http_workers > 0 {
            server = server.workers(cfg.http_workers);
        }
        Ok(Self { port, server: server.run(), apps })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server from elsewhere ([`Self::run_until_stopped`] then
    /// returns).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped, then waits (up to 10 s) until every HTTP worker
    /// has dropped its app and with it its share of the state. The last share
    /// then goes with the caller's runtime, on the caller's thread, so that
    /// the process exits with nothing in flight: libpq's TLS and Kerberos
    /// libraries tear themselves down at exit, and a thread that is still
    /// closing a database connection then crashes the process.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Arc::strong_count(&self.apps) > 1 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        served
    }
}

/// The routes of the OpenAPI document with their methods, plus the pages
/// outside it: what an unmatched request is checked against (405 vs 404).
#[derive(Debug, Clone, Default)]
pub struct RouteTable(Vec<(Vec<String>, Vec<String>)>);

impl RouteTable {
    fn from_openapi(doc: &utoipa::openapi::OpenApi) -> Self {
        let mut routes: Vec<(Vec<String>, Vec<String>)> = doc
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let mut methods: Vec<String> = Vec::new();
                for (m, op) in [
                    ("GET", &item.get),
                    ("POST", &item.post),
                    ("PUT", &item.put),
                    ("DELETE", &item.delete),
                    ("PATCH", &item.patch),
                ] {
                    if op.is_some() {
                        methods.push(m.to_owned());
                    }
                }
                (path.split('/').map(str::to_owned).collect(), methods)
            })
            .collect();
        for page in ["/", "/assets/{name}", "/docs", "/api-docs/openapi.json"] {
            routes.push((page.split('/').map(str::to_owned).collect(), vec!["GET".to_owned()]));
        }
        Self(routes)
    }

    /// The methods of the route template matching `path`, if one does.
    fn methods_for(&self, path: &str) -> Option<Vec<String>> {
        let segs: Vec<&str> = path.split('/').collect();
        self.0.iter().find_map(|(template, methods)| {
            let same = template.len() == segs.len()
                && template.iter().zip(&segs).all(|(t, s)| (t.starts_with('{') && !s.is_empty()) || t == s);
            same.then(|| methods.clone())
        })
    }
}

async fn not_found(req: actix_web::HttpRequest, routes: web::Data<RouteTable>) -> Result<HttpResponse, ApiError> {
    match routes.methods_for(req.path()) {
        Some(methods) if !methods.iter().any(|m| m == req.method().as_str()) => Err(ApiError::MethodNotAllowed(methods)),
        _ => Err(ApiError::NotFound("route")),
    }
}

/// Keeps a broker connection up: connects (with backoff), publishes it on the
/// watch channel, forwards the events exchange to the local broadcast, and
/// reconnects when the connection drops.
fn spawn_bus_supervisor(cfg: BusConfig, events: broadcast::Sender<crunch_domain::JobEvent>) -> watch::Receiver<Option<Bus>> {
    let (tx, rx) = watch::channel(None);
    let dedup = Arc::new(Mutex::new(Dedup::new(100_000)));
    tokio::spawn(async move {
        let mut backoff = crunch_service::Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        loop {
            match Bus::connect(&cfg, "crunch-gateway").await {
                Ok(bus) => match bus.subscribe_events().await {
                    Ok(stream) => {
                        tracing::info!("connected to RabbitMQ");
                        backoff.reset();
                        let _ = tx.send(Some(bus.clone()));
                        let mut stream = Box::pin(stream);
                        loop {
                            match tokio::time::timeout(Duration::from_secs(1), stream.next()).await {
                                Ok(Some(ev)) => {
                                    let fresh = match ev.event_id {
                                        Some(id) => dedup.lock().map(|mut d| d.first_time(id)).unwrap_or(true),
                                        None => true,
                                    };
                                    if fresh {
                                        let _ = events.send(ev);
                                    }
                                }
                                Ok(None) => break,
                                Err(_) if !bus.is_connected() => break,
                                Err(_) => {}
                            }
                        }
                        tracing::warn!("lost the RabbitMQ connection; reconnecting");
                        let _ = tx.send(None);
                        bus.close().await;
                    }
                    Err(e) => tracing::warn!(error = %e, "subscribing to events failed"),
                },
                Err(e) => tracing::warn!(error = %e, retry_in = ?backoff.current(), "RabbitMQ unreachable"),
            }
            backoff.wait().await;
        }
    });
    rx
}

/// The gateway's background tasks: the S3 bucket created (retried until the
/// store answers), the rate limiters' idle keys dropped every minute, the
/// Kafka probe, and the demo traffic.
fn spawn_background(state: &web::Data<AppState>, cfg: &Config) {
    if cfg.blob.blob_backend == crunch_blob::Backend::S3 {
        let blobs = state.blobs.clone();
        tokio::spawn(async move {
            let mut backoff = crunch_service::Backoff::new(Duration::from_millis(500), Duration::from_secs(10));
            while let Err(e) = blobs.ensure_bucket().await {
                tracing::warn!(error = %e, "creating the S3 bucket failed; retrying");
                backoff.wait().await;
            }
        });
    }
    let limiter = state.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(60)).await;
            limiter.rate_limits.shrink();
            limiter.key_lookup_limits.shrink();
        }
    });
    state.selections.spawn_probe();
    demo::spawn(state.clone(), cfg.demo.clone());
}

/// Registers the configured admin API key once the migrations are applied,
/// retrying while the database is unreachable. Returns what readiness
/// waits for: migrations applied and the key registered (at once when the
/// database is up at start-up).
async fn register_admin_key(pool: crunch_store::PgPool, mut migrated: watch::Receiver<bool>, key: Option<String>) -> watch::Receiver<bool> {
    let Some(key) = key else { return migrated };
    let register = move |pool: crunch_store::PgPool, key: String| async move {
        let registered = tokio::task::spawn_blocking(move || -> anyhow::Result<bool> {
            let mut conn = pool.get()?;
            Ok(crunch_store::keys::ensure_key(&mut conn, "admin", &auth::hash_key(&key))?)
        })
        .await
        .map_err(anyhow::Error::from)
        .and_then(|r| r);
        match registered {
            Ok(true) => tracing::info!("registered the admin API key"),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "could not register the admin API key yet; retrying");
                return false;
            }
        }
        true
    };
    if *migrated.borrow() && register(pool.clone(), key.clone()).await {
        return migrated;
    }
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let _ = migrated.wait_for(|m| *m).await;
        crunch_service::retry_until(|| register(pool.clone(), key.clone())).await;
        let _ = tx.send(true);
    });
    rx
}

/// The method as a metric label: a label per method token would let any
/// client add series.
fn metric_method(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// The access log's request line, with the value of every `access_token`
/// query parameter (the dashboard's WebSocket passes its API key so)
/// replaced by `***`.
fn request_line_for_log(method: &str, uri: &actix_web::http::Uri, version: actix_web::http::Version) -> String {
    let path = uri.path();
    let target = match uri.query() {
        None => path.to_owned(),
        Some(q) => {
            let redacted: Vec<String> = q
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("access_token") => format!("{k}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", redacted.join("&"))
        }
    };
    format!("{method} {target} {version:?}")
}

#[cfg(test)]
mod tests {
    use actix_web::http::{Uri, Version};

    #[test]
    fn the_access_log_never_shows_an_access_token() {
        let line = |u: &str| super::request_line_for_log("GET", &u.parse::<Uri>().expect("uri"), Version::HTTP_11);
        assert_eq!(line("/api/v1/events?access_token=crk_secret"), "GET /api/v1/events?access_token=*** HTTP/1.1");
        assert_eq!(line("/x?a=1&ACCESS_TOKEN=crk_s&b=2"), "GET /x?a=1&ACCESS_TOKEN=***&b=2 HTTP/1.1");
        assert_eq!(line("/api/v1/jobs?limit=5"), "GET /api/v1/jobs?limit=5 HTTP/1.1");
    }
}
