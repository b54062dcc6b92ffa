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
//! - [`kinds`]: one module per job kind.
//! - [`health`]: `/healthz` and `/readyz`.

pub mod health;
pub mod kinds;
pub mod process;
pub mod reconciler;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use crunch_bus::Bus;
use crunch_service::CoreArgs;
use futures::StreamExt;
use tokio::sync::watch;

/// Worker settings.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Unacknowledged jobs held at once (also the number run concurrently).
    #[arg(long, env = "CRUNCH_WORKER_PREFETCH", default_value_t = 4)]
    pub prefetch: u16,
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
    /// How often the reconciler runs, in ms.
    #[arg(long, env = "CRUNCH_RECONCILE_INTERVAL_MS", default_value_t = 1000)]
    pub reconcile_interval_ms: u64,
    /// A queued job whose message was never confirmed is republished after this many seconds.
    #[arg(long, env = "CRUNCH_UNPUBLISHED_GRACE_SECS", default_value_t = 10)]
    pub unpublished_grace_secs: u64,
    /// A queued job untouched for this many seconds is republished (its message may be lost).
    #[arg(long, env = "CRUNCH_STUCK_AFTER_SECS", default_value_t = 900)]
    pub stuck_after_secs: u64,
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
    /// Address of the health endpoints (`/healthz`, `/readyz`).
    #[arg(long, env = "CRUNCH_WORKER_HEALTH_ADDR", default_value = "127.0.0.1:8081")]
    pub health_addr: String,
    /// On SIGTERM, how long in-flight jobs may take to finish, in seconds
    /// (unfinished ones are returned to the queue).
    #[arg(long, env = "CRUNCH_SHUTDOWN_GRACE_SECS", default_value_t = 25)]
    pub shutdown_grace_secs: u64,
    #[command(flatten)]
    pub core: CoreArgs,
}

/// What every delivery and the reconciler share.
pub struct Shared {
    pub cfg: Config,
    pub pool: crunch_store::PgPool,
    pub limits: crunch_domain::Limits,
    pub bus: watch::Receiver<Option<Bus>>,
    pub shutdown: watch::Receiver<bool>,
}

impl Shared {
    pub fn bus(&self) -> Option<Bus> {
        self.bus.borrow().clone().filter(|b| b.is_connected())
    }

    pub fn shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }
}

/// Runs the worker until `shutdown` flips to `true`.
pub async fn run(cfg: Config, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    if cfg.threads > 0 {
        // Ignore "already initialised" (tests may start several workers in one process).
        let _ = rayon::ThreadPoolBuilder::new().num_threads(cfg.threads).build_global();
    }
    let pool = cfg.core.pool().await.context("building the database pool")?;
    let (bus_tx, bus_rx) = watch::channel(None);
    let shared = Arc::new(Shared { limits: cfg.core.limits.limits(), cfg, pool, bus: bus_rx, shutdown });

    let health = health::spawn(Arc::clone(&shared))?;
    let reconciler = tokio::spawn(reconciler::run(Arc::clone(&shared)));

    let bus_cfg = shared.cfg.core.amqp.bus_config();
    let mut backoff = Duration::from_millis(200);
    let mut shutdown = shared.shutdown.clone();
    while !shared.shutting_down() {
        let bus = match Bus::connect(&bus_cfg, "crunch-worker").await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "RabbitMQ unreachable");
                tokio::select! { _ = tokio::time::sleep(backoff) => {}, _ = shutdown.changed() => {} }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        let prefetch = shared.cfg.prefetch.max(1);
        let (channel, consumer) = match bus.consume_jobs(prefetch, "").await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "consuming failed");
                bus.close().await;
                continue;
            }
        };
        tracing::info!(queue = %bus.config().cpu_queue(), prefetch, "consuming jobs");
        backoff = Duration::from_millis(200);
        let _ = bus_tx.send(Some(bus.clone()));

        let mut stop = shared.shutdown.clone();
        let stop_taking = async move {
            while !*stop.borrow() {
                if stop.changed().await.is_err() {
                    break;
                }
            }
        };
        let s2 = Arc::clone(&shared);
        let b2 = bus.clone();
        consumer
            .take_while(|d| futures::future::ready(d.is_ok()))
            .filter_map(|d| futures::future::ready(d.ok()))
            .take_until(stop_taking)
            .for_each_concurrent(prefetch as usize, move |delivery| {
                let shared = Arc::clone(&s2);
                let bus = b2.clone();
                async move { process::handle(&shared, &bus, delivery).await }
            })
            .await;
        let _ = bus_tx.send(None);
        let _ = channel.close(200, "bye".into()).await;
        bus.close().await;
        if !shared.shutting_down() {
            tracing::warn!("lost the RabbitMQ connection; reconnecting");
        }
    }
    reconciler.abort();
    health.stop(true).await;
    tracing::info!("worker stopped");
    Ok(())
}
