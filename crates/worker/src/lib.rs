//! `crunch-worker`: consumes jobs from RabbitMQ, runs their kernels on rayon,
//! commits results to PostgreSQL, then acks; publishes job events.
//!
//! # Layout
//! - [`Config`]: every setting.
//! - [`run`]: the supervisor: (re)connects to RabbitMQ, consumes with a
//!   bounded prefetch, and runs the [`reconciler`] beside it.
//! - [`process`]: one delivery: decode -> typed spec -> start -> kernel ->
//!   finish -> relay events -> ack. Redelivery-safe: every state change is a
//!   conditional UPDATE, terminal events go through the outbox.
//! - [`quick`]: quick jobs, in batches (one round trip and one ack for many).
//! - [`kinds`]: one module per job kind.
//! - [`guarded_http`]: the SSRF-guarded HTTP client of URL checks and scrapes.
//! - [`health`]: `/healthz` and `/readyz`.

pub mod guarded_http;
pub mod health;
pub mod kinds;
pub mod process;
pub mod quick;
pub mod reconciler;
pub mod retention;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use crunch_bus::{Bus, JobQueue};
use crunch_service::CoreArgs;
use futures::StreamExt;
use tokio::sync::watch;

/// Worker settings, grouped by concern (every flag and variable keeps its name).
#[derive(Debug, Clone, Args)]
pub struct Config {
    #[command(flatten)]
    pub queues: QueueArgs,
    #[command(flatten)]
    pub url_check: UrlCheckArgs,
    #[command(flatten)]
    pub scrape: ScrapeArgs,
    #[command(flatten)]
    pub genes: GenesArgs,
    #[command(flatten)]
    pub reconcile: ReconcileArgs,
    #[command(flatten)]
    pub shards: ShardArgs,
    #[command(flatten)]
    pub retention: retention::RetentionArgs,
    #[command(flatten)]
    pub blob: crunch_blob::BlobArgs,
    /// Kernel threads (rayon); 0 = one per core.
    #[arg(long, env = "CRUNCH_WORKER_THREADS", default_value_t = 0)]
    pub threads: usize,
    /// Per-job time budget in seconds: past it the job fails with
    /// `time_budget_exceeded` and reports what it had found.
    #[arg(long, env = "CRUNCH_JOB_TIME_BUDGET_SECS", default_value_t = 60)]
    pub time_budget_secs: u64,
    /// How often a running job checks whether it was cancelled, in ms.
    #[arg(long, env = "CRUNCH_CANCEL_POLL_MS", default_value_t = 250)]
    pub cancel_poll_ms: u64,
    /// Address of the health endpoints (`/healthz`, `/readyz`, `/metrics`).
    #[arg(long, env = "CRUNCH_WORKER_HEALTH_ADDR", default_value = "127.0.0.1:8081")]
    pub health_addr: String,
    /// On SIGTERM, how long in-flight jobs may take to finish, in seconds
    /// (unfinished ones are returned to the queue).
    #[arg(long, env = "CRUNCH_SHUTDOWN_GRACE_SECS", default_value_t = 25)]
    pub shutdown_grace_secs: u64,
    #[command(flatten)]
    pub core: CoreArgs,
}

/// How many deliveries of each queue a worker holds and runs at once.
#[derive(Debug, Clone, Args)]
pub struct QueueArgs {
    /// Unacknowledged jobs held at once (also the number run concurrently).
    #[arg(long, env = "CRUNCH_WORKER_PREFETCH", default_value_t = 4)]
    pub prefetch: u16,
    /// Quick jobs (about a millisecond each: factorizations below 2^64, prime
    /// counts over ranges up to 10^6) held at once, from their own queue.
    #[arg(long, env = "CRUNCH_WORKER_QUICK_PREFETCH", default_value_t = 4096)]
    pub quick_prefetch: u16,
    /// Most quick jobs started, run and finished together (one transaction each way).
    #[arg(long, env = "CRUNCH_WORKER_QUICK_BATCH", default_value_t = 1024)]
    pub quick_batch: usize,
    /// How long a quick batch waits for more deliveries after its first one
    /// (milliseconds; 0 = take only what is ready). Under a steady trickle
    /// this trades a few milliseconds of latency for far fewer transactions.
    #[arg(long, env = "CRUNCH_WORKER_QUICK_LINGER_MS", default_value_t = 5)]
    pub quick_linger_ms: u64,
    /// Quick batches in flight at once (one computing while another is
    /// written, published and acked).
    #[arg(long, env = "CRUNCH_WORKER_QUICK_PIPELINE", default_value_t = 2)]
    pub quick_pipeline: usize,
    /// I/O jobs (URL checks, scrapes) held and run at once, apart from CPU jobs.
    #[arg(long, env = "CRUNCH_WORKER_IO_PREFETCH", default_value_t = 16)]
    pub io_prefetch: u16,
}

/// The guarded HTTP client of URL checks (scrapes share its allow-list and CA).
#[derive(Debug, Clone, Args)]
pub struct UrlCheckArgs {
    /// CIDRs that URL checks and scrapes may reach although the SSRF guard
    /// refuses internal addresses (comma-separated; empty by default).
    #[arg(long, env = "CRUNCH_SSRF_ALLOWLIST", value_delimiter = ',', default_value = "")]
    pub ssrf_allowlist: Vec<String>,
    /// Largest response body a URL check reads, in bytes (larger: body_too_large).
    #[arg(long, env = "CRUNCH_URL_CHECK_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub url_check_max_body_bytes: u64,
    /// Most redirects a URL check follows.
    #[arg(long, env = "CRUNCH_URL_CHECK_MAX_REDIRECTS", default_value_t = 10)]
    pub url_check_max_redirects: usize,
    /// A PEM file of extra CA certificates trusted for https checks.
    #[arg(long, env = "CRUNCH_URL_CHECK_EXTRA_CA_FILE")]
    pub url_check_extra_ca_file: Option<std::path::PathBuf>,
}

/// Hotel scrapes: the site profile, pacing, retries and limits.
#[derive(Debug, Clone, Args)]
pub struct ScrapeArgs {
    /// A scrape site profile (JSON) to use instead of the built-in TripAdvisor one.
    #[arg(long, env = "CRUNCH_SCRAPE_PROFILE_FILE")]
    pub scrape_profile_file: Option<std::path::PathBuf>,
    /// Base URL of the scrape profile's site (overrides the profile's).
    #[arg(long, env = "CRUNCH_SCRAPE_BASE_URL")]
    pub scrape_base_url: Option<String>,
    /// Detail pages of one scrape fetched at once.
    #[arg(long, env = "CRUNCH_SCRAPE_CONCURRENCY", default_value_t = 8)]
    pub scrape_concurrency: usize,
    /// Minimum time between two requests of one scrape to its site, in ms.
    #[arg(long, env = "CRUNCH_SCRAPE_MIN_INTERVAL_MS", default_value_t = 200)]
    pub scrape_min_interval_ms: u64,
    /// Retries of a failed page (with backoff).
    #[arg(long, env = "CRUNCH_SCRAPE_RETRIES", default_value_t = 2)]
    pub scrape_retries: u32,
    /// Timeout of one page request, in ms.
    #[arg(long, env = "CRUNCH_SCRAPE_TIMEOUT_MS", default_value_t = 15_000)]
    pub scrape_timeout_ms: u64,
    /// Largest page a scrape reads, in bytes.
    #[arg(long, env = "CRUNCH_SCRAPE_MAX_BODY_BYTES", default_value_t = 5 * 1024 * 1024)]
    pub scrape_max_body_bytes: u64,
    /// Pages nested deeper than this many elements are not parsed (the HTML
    /// parser's cost grows with the square of the depth); a failure is recorded.
    #[arg(long, env = "CRUNCH_SCRAPE_MAX_HTML_DEPTH", default_value_t = 512)]
    pub scrape_max_html_depth: usize,
    /// Detail pages fetched or parsed at once by all scrapes of this worker
    /// (each up to CRUNCH_SCRAPE_MAX_BODY_BYTES): bounds a hostile site's memory.
    #[arg(long, env = "CRUNCH_SCRAPE_PAGES_IN_FLIGHT", default_value_t = 32)]
    pub scrape_pages_in_flight: usize,
    /// Honour the site's robots.txt (RFC 9309: the `crunch` group, else `*`;
    /// Allow, Disallow with `*` and `$`, Crawl-delay).
    #[arg(long, env = "CRUNCH_SCRAPE_ROBOTS", default_value_t = true, action = clap::ArgAction::Set)]
    pub scrape_robots: bool,
    /// The longest robots.txt `Crawl-delay` honoured, in ms; a site asking for
    /// more is not scraped.
    #[arg(long, env = "CRUNCH_SCRAPE_MAX_CRAWL_DELAY_MS", default_value_t = 10_000)]
    pub scrape_max_crawl_delay_ms: u64,
}

/// Gene files: limits, batch size and time budget.
#[derive(Debug, Clone, Args)]
pub struct GenesArgs {
    /// Gene files: largest decompressed size (gzip bombs stop here), in bytes.
    #[arg(long, env = "CRUNCH_GENES_MAX_DECOMPRESSED_BYTES", default_value_t = 16 << 30)]
    pub genes_max_decompressed_bytes: u64,
    /// Gene files: largest record (header and sequence), in bytes.
    #[arg(long, env = "CRUNCH_GENES_MAX_RECORD_BYTES", default_value_t = 64 << 20)]
    pub genes_max_record_bytes: usize,
    /// Gene files: sequences stored per transaction (each with a checkpoint).
    #[arg(long, env = "CRUNCH_GENES_BATCH_RECORDS", default_value_t = 50_000)]
    pub genes_batch_records: usize,
    /// Gene files: connections that write one file's batches in parallel.
    #[arg(long, env = "CRUNCH_GENES_WRITERS", default_value_t = 2)]
    pub genes_writers: usize,
    /// Gene files: problems listed in the result (all are counted).
    #[arg(long, env = "CRUNCH_GENES_MAX_PROBLEMS", default_value_t = 100)]
    pub genes_max_problems: usize,
    /// Gene files: the time budget of one file, in seconds (large files take
    /// longer than other jobs).
    #[arg(long, env = "CRUNCH_GENES_TIME_BUDGET_SECS", default_value_t = 3600)]
    pub genes_time_budget_secs: u64,
}

/// The reconciler: how often it looks, and what it counts as lost.
#[derive(Debug, Clone, Args)]
pub struct ReconcileArgs {
    /// How often the reconciler runs, in ms.
    #[arg(long, env = "CRUNCH_RECONCILE_INTERVAL_MS", default_value_t = 1000)]
    pub reconcile_interval_ms: u64,
    /// A queued job whose message was never confirmed is republished after this many seconds.
    #[arg(long, env = "CRUNCH_UNPUBLISHED_GRACE_SECS", default_value_t = 10)]
    pub unpublished_grace_secs: u64,
    /// A queued job untouched for this many seconds is republished (its message may be lost).
    #[arg(long, env = "CRUNCH_STUCK_AFTER_SECS", default_value_t = 900)]
    pub stuck_after_secs: u64,
}

/// When prime ranges are split into shards, and into how many.
#[derive(Debug, Clone, Args)]
pub struct ShardArgs {
    /// A count-mode primes range wider than this is split into shards that
    /// any worker takes (0 = never).
    #[arg(long, env = "CRUNCH_PRIMES_SHARD_WIDTH_COUNT", default_value_t = 50_000_000_000)]
    pub primes_shard_width_count: u64,
    /// A list-mode primes range wider than this is split into shards (0 = never).
    #[arg(long, env = "CRUNCH_PRIMES_SHARD_WIDTH_LIST", default_value_t = 200_000_000)]
    pub primes_shard_width_list: u64,
    /// Most shards one primes job is split into.
    #[arg(long, env = "CRUNCH_PRIMES_MAX_SHARDS", default_value_t = 64)]
    pub primes_max_shards: u64,
}

/// What every delivery and the reconciler share.
pub struct Shared {
    pub cfg: Config,
    pub pool: crunch_store::PgPool,
    pub limits: crunch_domain::Limits,
    pub bus: watch::Receiver<Option<Bus>>,
    pub shutdown: watch::Receiver<bool>,
    pub io: Arc<guarded_http::IoConfig>,
    /// The scrapes' client (same SSRF guard, larger body cap) and settings.
    pub scrape_io: Arc<guarded_http::IoConfig>,
    pub scrape: Arc<kinds::scrape_hotels::ScrapeConfig>,
    pub genes: Arc<kinds::genes::GenesConfig>,
    pub blobs: crunch_blob::Blobs,
    /// Outbox events published: marked as such in batches.
    pub published_events: tokio::sync::mpsc::UnboundedSender<i64>,
    /// Dead letters by reason and the queues' backlog, on the health listener.
    pub metrics: crunch_service::metrics::ConsumerMetrics,
}

impl Shared {
    pub fn bus(&self) -> Option<Bus> {
        self.bus.borrow().clone().filter(|b| b.is_connected())
    }

    pub fn shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }
}

/// A consumer's deliveries until the connection drops or the worker shuts
/// down (then no more are taken; in-flight ones finish).
fn deliveries(shared: &Shared, consumer: crunch_bus::Deliveries) -> impl futures::Stream<Item = crunch_bus::Delivery> {
    let mut stop = shared.shutdown.clone();
    let stop_taking = async move {
        while !*stop.borrow() {
            if stop.changed().await.is_err() {
                break;
            }
        }
    };
    consumer
        .take_while(|d| futures::future::ready(d.is_ok()))
        .filter_map(|d| futures::future::ready(d.ok()))
        .take_until(stop_taking)
}

/// Runs deliveries of one queue, at most `limit` at a time.
async fn consume(shared: &Arc<Shared>, bus: &Bus, consumer: crunch_bus::Deliveries, limit: u16) {
    deliveries(shared, consumer)
        .for_each_concurrent(limit as usize, |delivery| {
            let shared = Arc::clone(shared);
            let bus = bus.clone();
            async move { process::handle(&shared, &bus, delivery).await }
        })
        .await;
}

/// Runs the worker until `shutdown` flips to `true`.
pub async fn run(cfg: Config, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    if cfg.threads > 0 {
        // Ignore "already initialised" (tests may start several workers in one process).
        let _ = rayon::ThreadPoolBuilder::new().num_threads(cfg.threads).build_global();
    }
    // The RabbitMQ handshake and declarations take tens of milliseconds:
    // they run while the rest starts.
    let bus_cfg = cfg.core.amqp.bus_config();
    let mut first_connect = Some(tokio::spawn({
        let bus_cfg = bus_cfg.clone();
        async move { Bus::connect(&bus_cfg, "crunch-worker").await }
    }));
    // Settings first (a bad one ends the process at once), then the database.
    let allowlist = cfg
        .url_check
        .ssrf_allowlist
        .iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse::<ipnet::IpNet>().with_context(|| format!("CRUNCH_SSRF_ALLOWLIST: '{s}' is not a CIDR")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let extra_ca = match &cfg.url_check.url_check_extra_ca_file {
        Some(path) => Some(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?),
        None => None,
    };
    let io = Arc::new(guarded_http::IoConfig::new(allowlist.clone(), cfg.url_check.url_check_max_body_bytes, cfg.url_check.url_check_max_redirects, extra_ca.as_deref())?);
    let scrape_io = Arc::new(guarded_http::IoConfig::new(allowlist, cfg.scrape.scrape_max_body_bytes, cfg.url_check.url_check_max_redirects, extra_ca.as_deref())?);
    let profile_text = match &cfg.scrape.scrape_profile_file {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        None => kinds::scrape_hotels::BUILT_IN_PROFILE.to_owned(),
    };
    let mut profile: kinds::scrape_hotels::Profile = serde_json::from_str(&profile_text).context("parsing the scrape profile")?;
    if let Some(base) = &cfg.scrape.scrape_base_url {
        profile.base_url = base.clone();
    }
    let scrape = Arc::new(kinds::scrape_hotels::ScrapeConfig {
        profile,
        concurrency: cfg.scrape.scrape_concurrency,
        min_interval: Duration::from_millis(cfg.scrape.scrape_min_interval_ms),
        retries: cfg.scrape.scrape_retries,
        timeout: Duration::from_millis(cfg.scrape.scrape_timeout_ms),
        robots: cfg.scrape.scrape_robots,
        max_crawl_delay: Duration::from_millis(cfg.scrape.scrape_max_crawl_delay_ms),
        max_html_depth: cfg.scrape.scrape_max_html_depth,
        pages_in_flight: Arc::new(tokio::sync::Semaphore::new(cfg.scrape.scrape_pages_in_flight.max(1))),
    });
    let genes = Arc::new(kinds::genes::GenesConfig {
        max_decompressed_bytes: cfg.genes.genes_max_decompressed_bytes,
        max_record_bytes: cfg.genes.genes_max_record_bytes,
        batch_records: cfg.genes.genes_batch_records.clamp(1, 100_000),
        writers: cfg.genes.genes_writers.clamp(1, 16),
        max_problems: cfg.genes.genes_max_problems,
    });
    let blobs = crunch_blob::Blobs::new(&cfg.blob).context("opening blob storage")?;
    let (pool, mut migrated) = cfg.core.pool().await.context("building the database pool")?;
    let (bus_tx, bus_rx) = watch::channel(None);
    let published_events = crunch_service::spawn_batch_writer("mark events published", pool.clone(), 1000, |c, ids: &[i64]| {
        crunch_store::events::mark_published(c, ids)
    });
    let shared = Arc::new(Shared { limits: cfg.core.limits.limits(), cfg, pool, bus: bus_rx, shutdown, io, scrape_io, scrape, genes, blobs, published_events, metrics: crunch_service::metrics::ConsumerMetrics::new("worker", &["queue"]) });

    let health = health::spawn(Arc::clone(&shared))?;
    let reconciler = tokio::spawn(reconciler::run(Arc::clone(&shared)));
    tokio::spawn(retention::run(Arc::clone(&shared)));

    let mut backoff = crunch_service::Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    let mut shutdown = shared.shutdown.clone();
    // No job runs on a schema that is not migrated yet.
    tokio::select! { _ = migrated.wait_for(|m| *m) => {}, _ = shutdown.changed() => {} }
    while !shared.shutting_down() {
        let connected = match first_connect.take() {
            Some(started) => started.await.unwrap_or_else(|e| Err(crunch_bus::BusError::Unavailable(e.to_string()))),
            None => Bus::connect(&bus_cfg, "crunch-worker").await,
        };
        let bus = match connected {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff.current(), "RabbitMQ unreachable");
                tokio::select! { _ = backoff.wait() => {}, _ = shutdown.changed() => {} }
                continue;
            }
        };
        let (cpu, io, quick) = tokio::join!(
            bus.consume_jobs(JobQueue::Cpu, shared.cfg.queues.prefetch.max(1)),
            bus.consume_jobs(JobQueue::Io, shared.cfg.queues.io_prefetch.max(1)),
            bus.consume_jobs(JobQueue::Quick, shared.cfg.queues.quick_prefetch.max(1)),
        );
        let (cpu, io, quick) = match (cpu, io, quick) {
            (Ok(c), Ok(i), Ok(q)) => (c, i, q),
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                tracing::warn!(error = %e, "consuming failed");
                bus.close().await;
                continue;
            }
        };
        tracing::info!(cpu_prefetch = shared.cfg.queues.prefetch, io_prefetch = shared.cfg.queues.io_prefetch, quick_prefetch = shared.cfg.queues.quick_prefetch, "consuming jobs");
        backoff.reset();
        let _ = bus_tx.send(Some(bus.clone()));
        // The queues on one connection; each with its own concurrency limit.
        let consuming = async {
            tokio::join!(
                consume(&shared, &bus, cpu.1, shared.cfg.queues.prefetch.max(1)),
                consume(&shared, &bus, io.1, shared.cfg.queues.io_prefetch.max(1)),
                quick::consume(&shared, &bus, deliveries(&shared, quick.1), quick::Batching {
                    size: shared.cfg.queues.quick_batch,
                    linger: Duration::from_millis(shared.cfg.queues.quick_linger_ms),
                    in_flight: shared.cfg.queues.quick_pipeline,
                }),
            )
        };
        // A lost connection ends the consumer streams; should one not end
        // (lapin does not promise it), the worker still reconnects:
        // what was in flight is redelivered, and every step is redelivery-safe.
        let lost = async {
            while bus.is_connected() {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        };
        tokio::select! {
            _ = consuming => {}
            _ = lost => tracing::warn!("the connection is gone but a consumer did not stop; reconnecting"),
        }
        let _ = bus_tx.send(None);
        // Bounded: on a half-dead connection a close may never be answered.
        for ch in [cpu.0, io.0, quick.0] {
            let _ = tokio::time::timeout(Duration::from_secs(2), ch.close(200, "bye".into())).await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), bus.close()).await;
        if !shared.shutting_down() {
            tracing::warn!("lost the RabbitMQ connection; reconnecting");
        }
    }
    reconciler.abort();
    health.stop(true).await;
    tracing::info!("worker stopped");
    Ok(())
}
