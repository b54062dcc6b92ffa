//! Plumbing shared by `crunch-gateway`, `crunch-worker` and `crunch-persister`.
//!
//! Configuration is layered: built-in defaults < `.env` at the working
//! directory (or the file named by `CRUNCH_ENV_FILE`) < process environment <
//! command-line flags. For every variable `X` a variable `X_FILE` naming a file
//! (a Docker secret) is read into `X` when `X` itself is not set (for the
//! variables of Crunch: `CRUNCH_*`, `DATABASE_*`, `AMQP_*`, `KAFKA_*`, `S3_*`).

use std::time::Duration;

pub mod metrics;

use clap::Args;
use crunch_bus::BusConfig;
use crunch_domain::Limits;
use crunch_store::PoolConfig;

/// Variables whose `*_FILE` form is honoured (other programs' `*_FILE`
/// variables in the environment are left alone).
const SECRET_PREFIXES: &[&str] = &["CRUNCH_", "DATABASE_", "AMQP_", "KAFKA_", "S3_"];

/// Turns transparent huge pages off for this process (Linux; elsewhere a
/// no-op). Call first in `main`. mimalloc, the allocator of every Crunch
/// binary, hands pages it has not used for 10 ms back to the kernel and
/// faults them in again when it needs them; where THP is on (Debian's default
/// is `madvise`, and mimalloc asks for it), each such fault zeroes a whole
/// 2 MiB page. In the worker that was 5% of its CPU under a drain of quick
/// jobs (`perf record`: `clear_page_erms` under `do_huge_pmd_anonymous_page`),
/// and the drain ran about 13% faster without it (docs/benchmarks.md).
pub fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        eprintln!("warning: could not turn transparent huge pages off: {e}");
    }
}

/// Loads `.env` and resolves `*_FILE` variables. Call first in `main`, before
/// parsing flags (clap reads the environment this fills).
pub fn load_environment() {
    let path = std::env::var("CRUNCH_ENV_FILE").unwrap_or_else(|_| ".env".to_owned());
    // A missing .env is normal; real variables always win over it.
    let _ = dotenvy::from_path(&path);
    let file_vars: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.ends_with("_FILE") && SECRET_PREFIXES.iter().any(|p| k.starts_with(p)))
        .collect();
    for (key, path) in file_vars {
        let target = key.trim_end_matches("_FILE");
        if target.is_empty() || target == "CRUNCH_ENV" || std::env::var_os(target).is_some() {
            continue;
        }
        match std::fs::read_to_string(&path) {
            // Called at the start of main, before any other thread exists.
            Ok(v) => std::env::set_var(target, v.trim_end_matches(['\n', '\r'])),
            Err(e) => eprintln!("warning: {key}={path}: {e}"),
        }
    }
}

/// Logs as text (default) or JSON (`CRUNCH_LOG_FORMAT=json`), filtered by `RUST_LOG`.
pub fn init_tracing(default_filter: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let json = std::env::var("CRUNCH_LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// PostgreSQL settings.
#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// PostgreSQL URL (or DATABASE_URL_FILE naming a file that holds it).
    #[arg(long, env = "DATABASE_URL", default_value = "postgres://postgres@127.0.0.1:5432/crunch", hide_env_values = true)]
    pub database_url: String,
    /// Connections in the pool.
    #[arg(long, env = "CRUNCH_DB_POOL_SIZE", default_value_t = 16)]
    pub db_pool_size: u32,
    /// Longest wait for a database connection, in ms (then 503).
    #[arg(long, env = "CRUNCH_DB_TIMEOUT_MS", default_value_t = 1500)]
    pub db_timeout_ms: u64,
}

impl DbArgs {
    pub fn pool_config(&self) -> PoolConfig {
        PoolConfig {
            url: self.database_url.clone(),
            max_size: self.db_pool_size,
            connect_timeout: Duration::from_millis(self.db_timeout_ms),
        }
    }
}

/// RabbitMQ settings.
#[derive(Debug, Clone, Args)]
pub struct AmqpArgs {
    /// RabbitMQ URL (or AMQP_URL_FILE naming a file that holds it).
    #[arg(long, env = "AMQP_URL", default_value = "amqp://guest:guest@127.0.0.1:5672/%2f", hide_env_values = true)]
    pub amqp_url: String,
    /// Prefix of every exchange and queue name.
    #[arg(long, env = "CRUNCH_AMQP_NAMESPACE", default_value = "crunch")]
    pub amqp_namespace: String,
    /// Deliveries of one job message before RabbitMQ dead-letters it (on the
    /// quick queue: runs of the job before the worker dead-letters it).
    #[arg(long, env = "CRUNCH_DELIVERY_LIMIT", default_value_t = 5)]
    pub delivery_limit: i64,
    /// Longest wait for a publisher confirm, in ms (then 503).
    #[arg(long, env = "CRUNCH_CONFIRM_TIMEOUT_MS", default_value_t = 3000)]
    pub confirm_timeout_ms: u64,
    /// Delete idle queues after this many ms (for tests; 0 = never).
    #[arg(long, env = "CRUNCH_QUEUE_EXPIRES_MS", default_value_t = 0)]
    pub queue_expires_ms: u64,
}

impl AmqpArgs {
    pub fn bus_config(&self) -> BusConfig {
        BusConfig {
            url: self.amqp_url.clone(),
            namespace: self.amqp_namespace.clone(),
            delivery_limit: self.delivery_limit,
            confirm_timeout: Duration::from_millis(self.confirm_timeout_ms),
            queue_expires: (self.queue_expires_ms > 0).then(|| Duration::from_millis(self.queue_expires_ms)),
        }
    }
}

/// Kafka settings (gateway: produces selections; persister: consumes them).
#[derive(Debug, Clone, Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers (comma-separated host:port).
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub kafka_brokers: String,
    /// Topic of selection changes.
    #[arg(long, env = "CRUNCH_KAFKA_TOPIC_SELECTIONS", default_value = "selections")]
    pub kafka_topic_selections: String,
    /// Topic of selection messages that cannot be stored, with the reason.
    #[arg(long, env = "CRUNCH_KAFKA_TOPIC_DEAD", default_value = "selections.dead")]
    pub kafka_topic_dead: String,
    /// Consumer group of the persisters.
    #[arg(long, env = "CRUNCH_KAFKA_GROUP", default_value = "crunch-persister")]
    pub kafka_group: String,
    /// Partitions of the selections topic when it is created.
    #[arg(long, env = "CRUNCH_KAFKA_PARTITIONS", default_value_t = 3)]
    pub kafka_partitions: i32,
    /// Replicas of each topic when it is created: 1 with one broker; with
    /// three brokers and `min.insync.replicas` 2, use 3 (every message is
    /// produced with acks=all).
    #[arg(long, env = "CRUNCH_KAFKA_REPLICATION", default_value_t = 1)]
    pub kafka_replication: i32,
    /// Longest wait for the broker to acknowledge a produced message, in ms (then 503).
    #[arg(long, env = "CRUNCH_KAFKA_PRODUCE_TIMEOUT_MS", default_value_t = 5000)]
    pub kafka_produce_timeout_ms: u64,
    /// A persister silent this long (no heartbeat) leaves the consumer group, in ms.
    #[arg(long, env = "CRUNCH_KAFKA_SESSION_TIMEOUT_MS", default_value_t = 6000)]
    pub kafka_session_timeout_ms: u32,
    /// Longest a persister may take over one batch before the group
    /// rebalances without it, in ms; also the longest a rebalance waits for
    /// members (after a broker restart: for members that no longer exist).
    #[arg(long, env = "CRUNCH_KAFKA_MAX_POLL_INTERVAL_MS", default_value_t = 8000)]
    pub kafka_max_poll_interval_ms: u32,
}

impl KafkaArgs {
    pub fn kafka_config(&self) -> crunch_bus::kafka::KafkaConfig {
        crunch_bus::kafka::KafkaConfig {
            brokers: self.kafka_brokers.clone(),
            selections_topic: self.kafka_topic_selections.clone(),
            dead_letter_topic: self.kafka_topic_dead.clone(),
            group_id: self.kafka_group.clone(),
            partitions: self.kafka_partitions,
            replication: self.kafka_replication,
            session_timeout_ms: self.kafka_session_timeout_ms,
            max_poll_interval_ms: self.kafka_max_poll_interval_ms,
        }
    }
}

/// Input limits (shared by the gateway, which refuses, and the worker, which
/// dead-letters).
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Most decimal digits accepted for factorize.n.
    #[arg(long, env = "CRUNCH_FACTORIZE_MAX_DIGITS", default_value_t = Limits::DEFAULT_FACTORIZE_MAX_DIGITS)]
    pub factorize_max_digits: usize,
    /// Widest range (to - from) accepted for primes in list mode.
    #[arg(long, env = "CRUNCH_PRIMES_LIST_MAX_WIDTH", default_value_t = Limits::DEFAULT_PRIMES_LIST_MAX_WIDTH)]
    pub primes_list_max_width: u64,
    /// Widest range (to - from) accepted for primes in count mode.
    #[arg(long, env = "CRUNCH_PRIMES_COUNT_MAX_WIDTH", default_value_t = Limits::DEFAULT_PRIMES_COUNT_MAX_WIDTH)]
    pub primes_count_max_width: u64,
    /// Most list pages one scrape_hotels job may ask for.
    #[arg(long, env = "CRUNCH_SCRAPE_MAX_PAGES", default_value_t = Limits::DEFAULT_SCRAPE_MAX_PAGES)]
    pub scrape_max_pages: u32,
}

impl LimitArgs {
    pub fn limits(&self) -> Limits {
        Limits {
            factorize_max_digits: self.factorize_max_digits,
            primes_list_max_width: self.primes_list_max_width,
            primes_count_max_width: self.primes_count_max_width,
            scrape_max_pages: self.scrape_max_pages,
        }
    }
}

/// What every service that runs jobs shares: the database, the broker, the
/// input limits, and whether to migrate at start-up.
#[derive(Debug, Clone, Args)]
pub struct CoreArgs {
    /// Apply database migrations at start-up.
    #[arg(long, env = "CRUNCH_MIGRATE_ON_START", default_value_t = true, action = clap::ArgAction::Set)]
    pub migrate_on_start: bool,
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub amqp: AmqpArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
}

impl CoreArgs {
    /// Logs the effective settings (passwords redacted).
    pub fn log_start(&self, service: &str) {
        tracing::info!(
            database = %redact_url(&self.db.database_url),
            amqp = %redact_url(&self.amqp.amqp_url),
            namespace = %self.amqp.amqp_namespace,
            limits = ?self.limits.limits(),
            "starting {service}"
        );
    }

    /// The database pool, and whether its migrations are applied
    /// ([`migrate_on_start`]; true at once when not asked to migrate).
    pub async fn pool(&self) -> anyhow::Result<(crunch_store::PgPool, tokio::sync::watch::Receiver<bool>)> {
        let pool = crunch_store::connect(&self.db.pool_config())?;
        let migrated = if self.migrate_on_start { migrate_on_start(&pool).await } else { tokio::sync::watch::channel(true).1 };
        Ok((pool, migrated))
    }
}

/// Redacts the password of a URL for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redact_url_hides_passwords_only() {
        assert_eq!(super::redact_url("amqp://guest:guest@h:5672/%2f"), "amqp://guest:***@h:5672/%2f");
        assert_eq!(super::redact_url("postgres://postgres@h/db"), "postgres://postgres@h/db");
    }
}

/// Applies pending migrations at start-up (under the store's advisory lock).
/// When the database cannot be reached the service still starts: the
/// migrations are retried in the background with backoff (up to 5 s apart),
/// and the receiver turns true once they are applied. Until then services
/// report not ready and take no work: in a fresh deployment they often start
/// before PostgreSQL accepts connections, and none may run on a schema it
/// has not migrated.
pub async fn migrate_on_start(pool: &crunch_store::PgPool) -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    if migrate_once(pool).await {
        let _ = tx.send(true);
        return rx;
    }
    let pool = pool.clone();
    tokio::spawn(async move {
        tokio::time::sleep(RETRY_FIRST).await;
        retry_until(|| migrate_once(&pool)).await;
        let _ = tx.send(true);
    });
    rx
}

/// The first pause of [`retry_until`]; it doubles up to 5 s.
pub const RETRY_FIRST: Duration = Duration::from_millis(250);

/// Runs `attempt` until it says it succeeded, pausing between attempts
/// ([`RETRY_FIRST`], doubling up to 5 s). The attempt logs its own failure.
pub async fn retry_until<F, Fut>(mut attempt: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut delay = RETRY_FIRST;
    while !attempt().await {
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

async fn migrate_once(pool: &crunch_store::PgPool) -> bool {
    let p = pool.clone();
    let migrated = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<String>> {
        let mut conn = p.get()?;
        Ok(crunch_store::run_migrations(&mut conn)?)
    })
    .await
    .map_err(anyhow::Error::from)
    .and_then(|r| r);
    match migrated {
        Ok(applied) => {
            if !applied.is_empty() {
                tracing::info!(?applied, "migrations applied");
            }
            true
        }
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "migrations not applied yet (database unreachable?); retrying");
            false
        }
    }
}

/// The end of a service's `main`: a fatal error is logged at once through the
/// service's log (JSON in the stack) and the process exits with status 1.
pub fn exit_status(result: anyhow::Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "fatal error; exiting");
            std::process::ExitCode::FAILURE
        }
    }
}

/// What a readiness check reports: ready or not, and a JSON body of facts.
pub type Readiness = std::pin::Pin<Box<dyn std::future::Future<Output = (bool, serde_json::Value)>>>;

/// Serves `/healthz` (the process is up), `/readyz` (`ready()` says) and
/// `/metrics` on `addr`, on one thread; returns the handle that stops it.
pub fn spawn_health_server<F>(addr: &str, ready: F, metrics: metrics::ConsumerMetrics) -> anyhow::Result<actix_web::dev::ServerHandle>
where
    F: Fn() -> Readiness + Clone + Send + 'static,
{
    use actix_web::{web, App, HttpResponse, HttpServer};
    let listener = std::net::TcpListener::bind(addr)?;
    tracing::info!(addr = %listener.local_addr()?, "health endpoints listening");
    let server = HttpServer::new(move || {
        let ready = ready.clone();
        let metrics = metrics.clone();
        App::new()
            .route(
                "/metrics",
                web::get().to(move || {
                    let text = metrics.render();
                    async move { HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(text) }
                }),
            )
            .route("/healthz", web::get().to(|| async { HttpResponse::Ok().json(serde_json::json!({"status": "ok"})) }))
            .route(
                "/readyz",
                web::get().to(move || {
                    let check = ready();
                    async move {
                        let (ok, mut body) = check.await;
                        body["status"] = serde_json::json!(if ok { "ready" } else { "not_ready" });
                        if ok {
                            HttpResponse::Ok().json(body)
                        } else {
                            HttpResponse::ServiceUnavailable().json(body)
                        }
                    }
                }),
            )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    Ok(handle)
}

/// `SELECT 1` through the pool, off the async runtime.
pub async fn database_reachable(pool: &crunch_store::PgPool) -> bool {
    let pool = pool.clone();
    tokio::task::spawn_blocking(move || pool.get().ok().is_some_and(|mut c| crunch_store::pool::ping(&mut c).is_ok()))
        .await
        .unwrap_or(false)
}

/// Group commit: many tasks each send one request and await its answer; a
/// task hands whatever requests queued up meanwhile (at most `max`) to `run`
/// in one blocking call with one pooled connection (one transaction for all),
/// with at most `parallel` such calls at a time. `run` answers every request
/// in order. If a batch of several fails for a reason other than an outage,
/// each of its requests is run again alone, so that one bad request cannot
/// fail the others.
pub struct GroupCommit<Req, Resp> {
    tx: tokio::sync::mpsc::UnboundedSender<(Req, tokio::sync::oneshot::Sender<Result<Resp, crunch_store::StoreError>>)>,
}

impl<Req, Resp> Clone for GroupCommit<Req, Resp> {
    fn clone(&self) -> Self {
        Self { tx: self.tx.clone() }
    }
}

impl<Req: Send + 'static, Resp: Send + 'static> GroupCommit<Req, Resp> {
    pub fn spawn<F>(name: &'static str, pool: crunch_store::PgPool, max: usize, parallel: usize, run: F) -> Self
    where
        F: Fn(&mut crunch_store::PgConnection, &[Req]) -> Result<Vec<Resp>, crunch_store::StoreError> + Send + Sync + 'static,
    {
        type Waiter<R> = tokio::sync::oneshot::Sender<Result<R, crunch_store::StoreError>>;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Req, Waiter<Resp>)>();
        let run = std::sync::Arc::new(run);
        let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(parallel.max(1)));
        tokio::spawn(async move {
            let mut buf = Vec::with_capacity(max);
            loop {
                let Ok(slot) = slots.clone().acquire_owned().await else { break };
                if rx.recv_many(&mut buf, max.max(1)).await == 0 {
                    break;
                }
                let (reqs, waiters): (Vec<Req>, Vec<Waiter<Resp>>) = std::mem::take(&mut buf).into_iter().unzip();
                let (pool, run) = (pool.clone(), run.clone());
                tokio::task::spawn_blocking(move || {
                    let _slot = slot;
                    let answers = pool.get().map_err(crunch_store::StoreError::from).and_then(|mut conn| {
                        match run(&mut conn, &reqs) {
                            Err(e) if reqs.len() > 1 && !e.is_unavailable() => {
                                tracing::warn!(error = ?e, what = name, items = reqs.len(), "batch failed; running its requests one by one");
                                Ok(reqs
                                    .chunks(1)
                                    .map(|one| run(&mut conn, one).and_then(|mut v| v.pop().ok_or(crunch_store::StoreError::Missing)))
                                    .collect::<Vec<_>>())
                            }
                            other => other.map(|v| v.into_iter().map(Ok).collect()),
                        }
                    });
                    match answers {
                        Ok(answers) => waiters.into_iter().zip(answers).for_each(|(w, a)| drop(w.send(a))),
                        Err(e) if waiters.len() == 1 => {
                            if let Some(w) = waiters.into_iter().next() {
                                let _ = w.send(Err(e));
                            }
                        }
                        Err(e) => {
                            let msg = e.to_string();
                            for w in waiters {
                                let _ = w.send(Err(crunch_store::StoreError::Unavailable(msg.clone())));
                            }
                        }
                    }
                });
            }
        });
        Self { tx }
    }

    /// Queues one request and waits for its answer.
    pub async fn call(&self, req: Req) -> Result<Resp, crunch_store::StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.tx.send((req, tx)).map_err(|_| crunch_store::StoreError::Unavailable("the batcher stopped".into()))?;
        rx.await.map_err(|_| crunch_store::StoreError::Unavailable("the batch was dropped".into()))?
    }
}

/// A write many tasks need done but none needs to wait for: items sent on the
/// returned channel are handed to `flush` in batches (whatever has arrived
/// while the previous batch was written, up to `max`) on a blocking thread
/// with one pooled connection. One statement for many jobs instead of one
/// transaction each. A batch that fails is logged and dropped: use it only for
/// writes something else repairs (an unmarked publication is republished by
/// the reconciler, an unmarked event re-sent by the relay and deduplicated).
pub fn spawn_batch_writer<T, F>(name: &'static str, pool: crunch_store::PgPool, max: usize, flush: F) -> tokio::sync::mpsc::UnboundedSender<T>
where
    T: Send + 'static,
    F: Fn(&mut crunch_store::PgConnection, &[T]) -> Result<(), crunch_store::StoreError> + Send + Sync + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<T>();
    let flush = std::sync::Arc::new(flush);
    tokio::spawn(async move {
        let mut buf = Vec::with_capacity(max);
        while rx.recv_many(&mut buf, max.max(1)).await > 0 {
            let batch = std::mem::take(&mut buf);
            let (pool, flush) = (pool.clone(), flush.clone());
            let n = batch.len();
            let res = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                let mut conn = pool.get()?;
                Ok(flush(&mut conn, &batch)?)
            })
            .await;
            match res {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, what = name, items = n, "batched write failed; it is repaired later"),
                Err(e) => tracing::warn!(error = %e, what = name, "batched write task failed"),
            }
        }
    });
    tx
}
