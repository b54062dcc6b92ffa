//! End-to-end test harness: starts the real gateway (in-process, port 0, see
//! [`Gateway`]) and real worker processes (the built `crunch-worker` binary,
//! so tests can SIGKILL them) against the real PostgreSQL and RabbitMQ, each
//! test with a fresh database and its own RabbitMQ namespace so tests run in
//! parallel.
//!
//! Settings: `TEST_DATABASE_SERVER` (default `postgres://postgres@127.0.0.1:5432`)
//! and `AMQP_URL` (default `amqp://guest:guest@127.0.0.1:5672/%2f`).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use crunch_gateway::{Application, Config};
use crunch_service::{AmqpArgs, CoreArgs, DbArgs, KafkaArgs, LimitArgs};
use diesel::{Connection, PgConnection, RunQueryDsl};
use serde_json::Value;
use uuid::Uuid;

pub fn db_server() -> String {
    std::env::var("TEST_DATABASE_SERVER").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// Creates an empty database with a unique name and returns its URL.
pub fn fresh_database() -> anyhow::Result<String> {
    let name = format!("crunch_test_{}", Uuid::new_v4().simple());
    let mut admin = PgConnection::establish(&format!("{}/postgres", db_server())).context("connecting to PostgreSQL")?;
    diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut admin)?;
    Ok(format!("{}/{name}", db_server()))
}

/// A fresh, migrated database with one API key, for tests of the store
/// alone: a connection to it and the key's id (the owner of jobs).
pub fn store_fixture() -> anyhow::Result<(PgConnection, Uuid)> {
    let mut conn = PgConnection::establish(&fresh_database()?)?;
    crunch_store::run_migrations(&mut conn)?;
    let owner = crunch_store::keys::insert_key(&mut conn, "t", b"hash")?.id;
    Ok((conn, owner))
}

/// Where cargo put the workspace's binaries (next to this test's `deps/`, or
/// `CRUNCH_BIN_DIR`: the benchmark drivers point it at the release build).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = match std::env::var_os("CRUNCH_BIN_DIR") {
        Some(d) => PathBuf::from(d),
        None => exe.parent().and_then(|d| d.parent()).expect("target dir").to_path_buf(),
    };
    let path = dir.join(name);
    assert!(path.exists(), "{} is missing: run `cargo build --workspace --bins` first (scripts/test.sh does)", path.display());
    path
}

/// Settings a test may change before starting the environment.
#[derive(Debug, Clone)]
pub struct Options {
    pub database_url: Option<String>,
    pub gateway_amqp_url: Option<String>,
    pub gateway_db_url: Option<String>,
    pub max_body_bytes: usize,
    pub worker_env: Vec<(String, String)>,
    pub workers: usize,
    /// Blob storage on the S3 test server (a bucket of the test's own) instead
    /// of a local directory.
    pub s3: bool,
    /// Largest gene-file upload the gateway takes.
    pub genes_max_upload_bytes: u64,
    /// The gateway's rate limits and timeouts.
    pub protect: crunch_gateway::protect::ProtectArgs,
    /// A Kafka-protocol broker of the test's own (default: `KAFKA_BROKERS`).
    pub kafka_brokers: Option<String>,
    /// Adminer's address, for the dashboard's link.
    pub adminer_url: Option<String>,
    /// Deliveries of a job message before it is dead-lettered (the gateway's
    /// queues and the workers' `CRUNCH_DELIVERY_LIMIT`).
    pub delivery_limit: i64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            database_url: None,
            gateway_amqp_url: None,
            gateway_db_url: None,
            max_body_bytes: 64 * 1024,
            worker_env: Vec::new(),
            workers: 1,
            s3: false,
            genes_max_upload_bytes: 2 << 30,
            protect: Default::default(),
            kafka_brokers: None,
            adminer_url: None,
            delivery_limit: 5,
        }
    }
}

/// A gateway serving in this process on a thread of its own, in its own
/// actix system as `crunch-gateway serve` runs it, stopped and joined on
/// drop: its database connections are closed before the test returns, never
/// while the process exits (see [`Application::run_until_stopped`]).
pub struct Gateway {
    pub port: u16,
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Gateway {
    pub async fn start(cfg: Config) -> anyhow::Result<Self> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let thread = std::thread::Builder::new().name("gateway".into()).spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                match Application::build(cfg).await {
                    Ok(app) => {
                        let _ = tx.send(Ok((app.port(), app.handle())));
                        if let Err(e) = app.run_until_stopped().await {
                            eprintln!("the gateway stopped with an error: {e}");
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            })
        })?;
        let (port, handle) = rx.await.context("the gateway's thread ended")??;
        Ok(Self { port, handle, thread: Some(thread) })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        // The stop command is sent at once; the thread ends once the server
        // and everything it holds are gone.
        drop(self.handle.stop(false));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A running gateway plus worker processes, a fresh database, a namespace
/// and an API key.
pub struct TestEnv {
    pub base: String,
    pub database_url: String,
    pub namespace: String,
    pub key: String,
    pub http: reqwest::Client,
    pub workers: Vec<Child>,
    pub persisters: Vec<Child>,
    /// The health listeners (`http://127.0.0.1:<port>`) of the workers and
    /// persisters, by index: `/metrics` is there.
    pub worker_health: Vec<String>,
    pub persister_health: Vec<String>,
    worker_env: Vec<(String, String)>,
    kafka_brokers: String,
    gateway: Option<Gateway>,
}

pub fn kafka_brokers() -> String {
    std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// Per-test Kafka topics and group, from the test's namespace.
pub fn kafka_args(namespace: &str) -> KafkaArgs {
    KafkaArgs {
        kafka_brokers: kafka_brokers(),
        kafka_topic_selections: format!("{namespace}.selections"),
        kafka_topic_dead: format!("{namespace}.selections.dead"),
        kafka_group: format!("{namespace}-persister"),
        kafka_partitions: 3,
        kafka_replication: 1,
        kafka_produce_timeout_ms: 5000,
        kafka_session_timeout_ms: 6000,
        kafka_max_poll_interval_ms: 8000,
    }
}

/// The local blob directory shared by a test's gateway and workers.
pub fn blob_dir(namespace: &str) -> PathBuf {
    std::env::temp_dir().join(format!("crunch-blobs-{namespace}"))
}

/// The environment that gives a worker process the same blob storage.
pub fn blob_env(args: &crunch_blob::BlobArgs) -> Vec<(String, String)> {
    let mut env = vec![
        ("CRUNCH_BLOB_BACKEND".to_owned(), if args.blob_backend == crunch_blob::Backend::S3 { "s3" } else { "local" }.to_owned()),
        ("CRUNCH_BLOB_DIR".to_owned(), args.blob_dir.display().to_string()),
        ("S3_BUCKET".to_owned(), args.s3_bucket.clone()),
    ];
    let secret = args.s3_secret_access_key.as_ref().map(|s| s.expose().to_owned());
    for (k, v) in [("S3_ENDPOINT", &args.s3_endpoint), ("S3_ACCESS_KEY_ID", &args.s3_access_key_id), ("S3_SECRET_ACCESS_KEY", &secret)] {
        if let Some(v) = v {
            env.push((k.to_owned(), v.clone()));
        }
    }
    env
}

pub fn gateway_config(database_url: &str, amqp: &str, namespace: &str, max_body: usize) -> Config {
    Config {
        kafka: kafka_args(namespace),
        http_addr: "127.0.0.1:0".into(),
        http_workers: 2,
        max_body_bytes: max_body,
        admin_api_key: None,
        adminer_url: None,
        // Tests check monitors every second.
        monitor_min_interval_secs: 1,
        monitors_per_key: 20,
        genes_max_upload_bytes: 2 << 30,
        blob: crunch_blob::BlobArgs::local(blob_dir(namespace)),
        demo: Default::default(),
        protect: Default::default(),
        key_cache_secs: 5,
        submit_batch_max: 256,
        submit_batch_parallel: 2,
        core: CoreArgs {
            migrate_on_start: true,
            db: DbArgs { database_url: database_url.into(), db_pool_size: 8, db_timeout_ms: 1000 },
            amqp: AmqpArgs {
                amqp_url: amqp.into(),
                amqp_namespace: namespace.into(),
                delivery_limit: 5,
                confirm_timeout_ms: 2000,
                queue_expires_ms: 600_000,
            },
            limits: LimitArgs { factorize_max_digits: 300, primes_list_max_width: 1_000_000_000, primes_count_max_width: crunch_domain::Limits::DEFAULT_PRIMES_COUNT_MAX_WIDTH, scrape_max_pages: 10 },
        },
    }
}

impl TestEnv {
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(opts: Options) -> anyhow::Result<Self> {
        let database_url = match opts.database_url {
            Some(u) => u,
            None => fresh_database()?,
        };
        {
            let pool = crunch_store::connect(&crunch_store::PoolConfig {
                url: database_url.clone(),
                max_size: 1,
                connect_timeout: Duration::from_secs(5),
            })?;
            let mut c = pool.get()?;
            crunch_store::run_migrations(&mut c)?;
        }
        let namespace = format!("t{}", &Uuid::new_v4().simple().to_string()[..12]);
        let gw_db = opts.gateway_db_url.clone().unwrap_or_else(|| database_url.clone());
        let gw_amqp = opts.gateway_amqp_url.clone().unwrap_or_else(amqp_url);
        let mut cfg = gateway_config(&gw_db, &gw_amqp, &namespace, opts.max_body_bytes);
        if opts.s3 {
            cfg.blob = s3_args(&namespace);
        }
        cfg.genes_max_upload_bytes = opts.genes_max_upload_bytes;
        cfg.adminer_url = opts.adminer_url.clone();
        cfg.protect = opts.protect;
        cfg.core.amqp.delivery_limit = opts.delivery_limit;
        if let Some(b) = &opts.kafka_brokers {
            cfg.kafka.kafka_brokers = b.clone();
        }
        let kafka_brokers = cfg.kafka.kafka_brokers.clone();
        let mut worker_env = blob_env(&cfg.blob);
        worker_env.push(("CRUNCH_DELIVERY_LIMIT".into(), opts.delivery_limit.to_string()));
        worker_env.extend(opts.worker_env);
        let gateway = Gateway::start(cfg).await?;
        let base = gateway.base();
        let key = create_key(&database_url, "test")?;
        let mut env = Self {
            base,
            database_url,
            namespace,
            key,
            http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?,
            workers: Vec::new(),
            persisters: Vec::new(),
            worker_health: Vec::new(),
            persister_health: Vec::new(),
            worker_env,
            kafka_brokers,
            gateway: Some(gateway),
        };
        for _ in 0..opts.workers {
            env.spawn_worker()?;
        }
        if opts.gateway_amqp_url.is_none() && opts.gateway_db_url.is_none() {
            env.wait_ready().await?;
        }
        Ok(env)
    }

    /// Starts one more `crunch-worker` process.
    pub fn spawn_worker(&mut self) -> anyhow::Result<()> {
        let health = format!("127.0.0.1:{}", free_port()?);
        let mut cmd = Command::new(binary("crunch-worker"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("CRUNCH_ENV_FILE", "/nonexistent")
            .env("DATABASE_URL", &self.database_url)
            .env("AMQP_URL", amqp_url())
            .env("CRUNCH_AMQP_NAMESPACE", &self.namespace)
            .env("CRUNCH_QUEUE_EXPIRES_MS", "600000")
            .env("CRUNCH_WORKER_HEALTH_ADDR", &health)
            .env("CRUNCH_WORKER_THREADS", "2")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in &self.worker_env {
            cmd.env(k, v);
        }
        self.workers.push(cmd.spawn().context("starting crunch-worker")?);
        self.worker_health.push(format!("http://{health}"));
        Ok(())
    }

    /// Starts a `crunch-persister` process on this test's topics.
    pub fn spawn_persister(&mut self) -> anyhow::Result<()> {
        let health = format!("127.0.0.1:{}", free_port()?);
        let child = persister_command(&binary("crunch-persister"), &self.database_url, &self.namespace)
            .env("KAFKA_BROKERS", &self.kafka_brokers)
            .env("CRUNCH_PERSISTER_HEALTH_ADDR", &health)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting crunch-persister")?;
        self.persisters.push(child);
        self.persister_health.push(format!("http://{health}"));
        Ok(())
    }

    /// SIGKILLs persister `i`.
    pub fn kill_persister(&mut self, i: usize) {
        let _ = self.persisters[i].kill();
        let _ = self.persisters[i].wait();
    }

    /// SIGKILLs worker `i`.
    pub fn kill_worker(&mut self, i: usize) {
        let _ = self.workers[i].kill();
        let _ = self.workers[i].wait();
    }

    /// Removes worker `i` (killed already) and its health address from the
    /// lists, so that indexes name the running workers only.
    pub fn forget_worker(&mut self, i: usize) {
        let mut gone = self.workers.remove(i);
        let _ = gone.wait();
        self.worker_health.remove(i);
    }

    /// A service's metric, summed over the series whose labels contain
    /// `labels` (e.g. `reason="malformed"`), from `/metrics` at `health`
    /// (an entry of `worker_health` or `persister_health`); 0 when absent.
    pub async fn service_metric(&self, health: &str, name: &str, labels: &str) -> anyhow::Result<f64> {
        let text = self.http.get(format!("{health}/metrics")).send().await?.error_for_status()?.text().await?;
        Ok(metric_sum(&text, name, labels))
    }

    /// Polls [`Self::service_metric`] until `pred` holds; its last value, or
    /// an error naming it after `within`.
    pub async fn wait_metric(&self, health: &str, name: &str, labels: &str, pred: impl Fn(f64) -> bool, within: Duration) -> anyhow::Result<f64> {
        let deadline = Instant::now() + within;
        loop {
            let v = self.service_metric(health, name, labels).await.unwrap_or(f64::NAN);
            if pred(v) {
                return Ok(v);
            }
            if Instant::now() > deadline {
                bail!("{name}{{{labels}}} is {v} after {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn wait_ready(&self) -> anyhow::Result<()> {
        // Generous: each test declares its own quorum queues (four per
        // namespace), and many tests start at once on one broker; a CI run
        // saw two gateways of five not ready within 20 s.
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(r) = self.http.get(format!("{}/readyz", self.base)).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("gateway not ready in 60 s")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn submit(&self, body: Value) -> anyhow::Result<reqwest::Response> {
        Ok(self.http.post(self.url("/api/v1/jobs")).bearer_auth(&self.key).json(&body).send().await?)
    }

    /// Submits a factorize job and returns its id (asserting 202).
    pub async fn submit_n(&self, n: &str) -> anyhow::Result<String> {
        let r = self.submit(serde_json::json!({"kind": "factorize", "params": {"n": n}})).await?;
        let status = r.status();
        let body: Value = r.json().await?;
        if status != 202 {
            bail!("expected 202, got {status}: {body}");
        }
        Ok(body["id"].as_str().context("id")?.to_owned())
    }

    pub async fn get_job(&self, id: &str) -> anyhow::Result<Value> {
        Ok(self.http.get(self.url(&format!("/api/v1/jobs/{id}"))).bearer_auth(&self.key).send().await?.json().await?)
    }

    /// Polls until the job's status satisfies `pred` (or `timeout`).
    pub async fn wait_for(&self, id: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> anyhow::Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let job = self.get_job(id).await?;
            if pred(job["status"].as_str().unwrap_or("")) {
                return Ok(job);
            }
            if Instant::now() > deadline {
                bail!("job {id} still {} after {timeout:?}", job["status"]);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_finished(&self, id: &str) -> anyhow::Result<Value> {
        self.wait_for(id, Duration::from_secs(60), |s| matches!(s, "succeeded" | "failed" | "cancelled")).await
    }

    /// A direct database connection, for assertions on what was stored.
    pub fn db(&self) -> anyhow::Result<PgConnection> {
        Ok(PgConnection::establish(&self.database_url)?)
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        // The gateway first, so that it is gone before its workers and its
        // namespace's queues are.
        self.gateway.take();
        for w in self.workers.iter_mut().chain(self.persisters.iter_mut()) {
            let _ = w.kill();
            let _ = w.wait();
        }
        delete_namespace(&self.namespace);
    }
}

/// Deletes a namespace's queues and exchanges, at the end of a test or a
/// benchmark, rather than leaving them to expire (`CRUNCH_QUEUE_EXPIRES_MS`,
/// 10 minutes): every quorum queue holds file handles, and a test run
/// creates about 300 of them, which is RabbitMQ's whole file-handle limit
/// here (about 900): past it, new connections time out. Best effort, within
/// 5 s; runs on a thread of its own, so that it may be called from async code.
pub fn delete_namespace(namespace: &str) {
    use crunch_bus::lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
    let cfg = crunch_bus::BusConfig {
        url: amqp_url(),
        namespace: namespace.to_owned(),
        delivery_limit: 0,
        confirm_timeout: Duration::from_secs(5),
        queue_expires: None,
    };
    let cleanup = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        rt.block_on(async {
            let delete = async {
                let conn = crunch_bus::lapin::Connection::connect(&cfg.url, Default::default()).await.ok()?;
                let ch = conn.create_channel().await.ok()?;
                for q in cfg.queues() {
                    let _ = ch.queue_delete(q.into(), QueueDeleteOptions::default()).await;
                }
                for x in cfg.exchanges() {
                    let _ = ch.exchange_delete(x.into(), ExchangeDeleteOptions::default()).await;
                }
                conn.close(0, "done".into()).await.ok()
            };
            let _ = tokio::time::timeout(Duration::from_secs(5), delete).await;
        });
    });
    let _ = cleanup.join();
}

/// A port free at the moment (the OS's choice for port 0), for a child
/// process's listener whose address the test must know.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The sum of the Prometheus text's series of `name` whose labels contain
/// `labels` ("" for all).
pub fn metric_sum(text: &str, name: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(series, _)| {
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            metric == name && rest.contains(labels)
        })
        .filter_map(|(_, v)| v.parse::<f64>().ok())
        .sum()
}

/// A `crunch-persister` command on a namespace's topics and group.
pub fn persister_command(bin: &std::path::Path, database_url: &str, namespace: &str) -> Command {
    let k = kafka_args(namespace);
    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CRUNCH_ENV_FILE", "/nonexistent")
        .env("DATABASE_URL", database_url)
        .env("KAFKA_BROKERS", &k.kafka_brokers)
        .env("CRUNCH_KAFKA_TOPIC_SELECTIONS", &k.kafka_topic_selections)
        .env("CRUNCH_KAFKA_TOPIC_DEAD", &k.kafka_topic_dead)
        .env("CRUNCH_KAFKA_GROUP", &k.kafka_group)
        .env("CRUNCH_PERSISTER_HEALTH_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "warn");
    cmd
}

/// Creates an API key in the database and returns it.
pub fn create_key(database_url: &str, name: &str) -> anyhow::Result<String> {
    let mut c = PgConnection::establish(database_url)?;
    let key = crunch_gateway::auth::generate_key();
    crunch_store::keys::insert_key(&mut c, name, &crunch_gateway::auth::hash_key(&key))?;
    Ok(key)
}

/// A TCP proxy a test can cut and restore, to play a dependency's outage
/// without touching the real server that other tests share.
pub struct Proxy {
    pub port: u16,
    up: tokio::sync::watch::Sender<bool>,
}

impl Proxy {
    /// Forwards 127.0.0.1:<port> to `target` (host:port) while up.
    pub async fn start(target: &str) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let (up, up_rx) = tokio::sync::watch::channel(true);
        let target = target.to_owned();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !*up_rx.borrow() {
                    drop(inbound); // refused while down
                    continue;
                }
                let target = target.clone();
                let mut down = up_rx.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = async { while *down.borrow() { if down.changed().await.is_err() { break; } } } => {}
                    }
                });
            }
        });
        Ok(Self { port, up })
    }

    /// Drops every open connection and refuses new ones.
    pub fn cut(&self) {
        let _ = self.up.send(false);
    }

    pub fn restore(&self) {
        let _ = self.up.send(true);
    }
}

/// A small HTTP site for URL-check tests, on 127.0.0.1 (plain) and optionally
/// TLS with a self-signed certificate for `localhost`:
/// `/ok` 200, `/redirect` -> `/ok`, `/loop` -> itself, `/big` 2 MB,
/// `/slow` 3 s, `/to-other` -> the same port on 127.0.0.2, `/status/503`.
pub struct Fixture {
    pub port: u16,
}

/// Reads an HTTP request's head (at most 16 KiB); `None` if the peer went away.
async fn read_request_head<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() > 16 * 1024 {
            return None;
        }
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

/// A request's head and its body (as long as its Content-Length, up to 1 MiB).
async fn read_request<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> Option<(String, Vec<u8>)> {
    use tokio::io::AsyncReadExt;
    let raw = read_request_head(s).await?;
    let (head, rest) = raw.split_once("\r\n\r\n")?;
    let length: usize = head
        .lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.trim().eq_ignore_ascii_case("content-length")).and_then(|(_, v)| v.trim().parse().ok()))
        .unwrap_or(0)
        .min(1 << 20);
    let mut body = rest.as_bytes().to_vec();
    let mut chunk = [0u8; 8192];
    while body.len() < length {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    Some((head.to_owned(), body))
}

/// Requests `/flaky/<n>/<token>` has had, by token.
static FLAKY: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<String, u32>>> = std::sync::OnceLock::new();

async fn serve_fixture<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut s: S, port: u16) {
    use tokio::io::AsyncWriteExt;
    let Some(head) = read_request_head(&mut s).await else { return };
    let mut parts = head.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let path = parts.next().unwrap_or("/").split('?').next().unwrap_or("/").to_owned();
    let (status, headers, body): (&str, String, Vec<u8>) = match path.as_str() {
        "/ok" => ("200 OK", "Content-Type: text/html; charset=utf-8\r\n".into(), b"<p>hello</p>".to_vec()),
        "/redirect" => ("302 Found", "Location: /ok\r\n".into(), Vec::new()),
        "/loop" => ("302 Found", "Location: /loop\r\n".into(), Vec::new()),
        "/to-other" => ("302 Found", format!("Location: http://127.0.0.2:{port}/ok\r\n"), Vec::new()),
        "/big" => ("200 OK", "Content-Type: application/octet-stream\r\n".into(), vec![b'x'; 2_000_000]),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            ("200 OK", String::new(), b"late".to_vec())
        }
        "/status/503" => ("503 Service Unavailable", String::new(), b"down".to_vec()),
        p if p.starts_with("/flaky/") => {
            // /flaky/<n>/<token>: 503 for the token's first n requests, then 200.
            let (n, token) = p["/flaky/".len()..].split_once('/').unwrap_or(("1", ""));
            let seen = {
                let mut seen = FLAKY.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
                let count = seen.entry(token.to_owned()).or_insert(0);
                *count += 1;
                *count
            };
            if seen <= n.parse().unwrap_or(1) {
                ("503 Service Unavailable", String::new(), b"down".to_vec())
            } else {
                ("200 OK", "Content-Type: text/plain\r\n".into(), b"up".to_vec())
            }
        }
        _ => ("404 Not Found", String::new(), b"nope".to_vec()),
    };
    let mut out = format!("HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n", body.len()).into_bytes();
    if method != "HEAD" {
        out.extend_from_slice(&body);
    }
    let _ = s.write_all(&out).await;
    let _ = s.shutdown().await;
}

impl Fixture {
    /// Plain HTTP on 127.0.0.1:<port> (and 127.0.0.2:<port> by binding 0.0.0.0 is avoided:
    /// a second listener serves 127.0.0.2 on the same port when it can be had).
    pub async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        if let Ok(other) = tokio::net::TcpListener::bind(("127.0.0.2", port)).await {
            tokio::spawn(async move {
                while let Ok((s, _)) = other.accept().await {
                    tokio::spawn(serve_fixture(s, port));
                }
            });
        }
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                tokio::spawn(serve_fixture(s, port));
            }
        });
        Ok(Self { port })
    }

    /// The same site over TLS; returns it and the PEM of its certificate
    /// (to trust it with CRUNCH_URL_CHECK_EXTRA_CA_FILE).
    pub async fn start_tls() -> anyhow::Result<(Self, String)> {
        use tokio_rustls::rustls;
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
        let cert_pem = certified.cert.pem();
        let key_pem = certified.signing_key.serialize_pem();
        let certs = rustls_pemfile::certs(&mut cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>()?;
        let key = rustls_pemfile::private_key(&mut key_pem.as_bytes())?.context("a private key")?;
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(s).await {
                        serve_fixture(tls, port).await;
                    }
                });
            }
        });
        Ok((Self { port }, cert_pem))
    }
}

/// A generated hotel site in the TripAdvisor layout, for scrape tests:
/// list page 1 (`/Hotels-g1-Testville-Hotels.html`) carries the JSON in
/// `data-hotels-data` (hotels 1000..1029), page 2 (`oa30`) only the fallback
/// anchors (1030..1059) and broken HTML; detail pages have the description,
/// the summary (with escaped quotes on odd ids) and stars; 1005 has none of
/// them, 1007 answers 500, robots.txt disallows 1003; `/Hotels-g2-Evil-Hotels.html`
/// lists hotels 3000..3002 whose names and descriptions carry HTML and script;
/// `/Hotels-g3-Deep-Hotels.html` and `/Hotels-g4-Bold-Hotels.html` hide hotel 1000 under
/// a million unclosed `<div>` or `<b>` elements; `/Hotels-g5-Big-Hotels.html`
/// lists 40 hotels whose detail pages are 4.5 MiB each. `latency` delays every
/// response; `slow` delays one more detail page by 3 s.
pub struct HotelSite {
    pub port: u16,
}

fn hotel_site_page(path: &str) -> (u16, String) {
    let detail = |id: u32| format!("/Hotel_Review-g1-d{id}-Reviews-H{id:05}.html");
    match path {
        "/Hotels-g1-Testville-Hotels.html" => {
            let hotels: Vec<serde_json::Value> = (1000..1030)
                .map(|id| serde_json::json!({"id": id.to_string(), "name": format!("H{id:05}"), "detailUrl": detail(id), "bubbleRating": {"rating": 3.5}, "numReviews": id}))
                .collect();
            let data = serde_json::json!({"hotels": hotels}).to_string().replace('\'', "&#39;");
            (200, format!("<html><body><div data-hotels-data='{data}'></div></body></html>"))
        }
        "/Hotels-g1-oa30-Testville-Hotels.html" => {
            let anchors: String = (1030..1060).map(|id| format!("<div data-automation=\"card\"><a href=\"{}\">H{id:05}</a></div>", detail(id))).collect();
            (200, format!("<html><body>{anchors}<div><p><span>unclosed"))
        }
        "/Hotels-g2-Evil-Hotels.html" => {
            // Hostile names: a dashboard must show them as text.
            let hotels: Vec<serde_json::Value> = (3000..3003)
                .map(|id| serde_json::json!({"id": id.to_string(), "name": format!("<img src=x onerror=window.__xss=1>Evil {id}"), "detailUrl": detail(id), "bubbleRating": {"rating": 2.0}, "numReviews": 1}))
                .collect();
            let data = serde_json::json!({"hotels": hotels}).to_string().replace('\'', "&#39;");
            (200, format!("<html><body><div data-hotels-data='{data}'></div></body></html>"))
        }
        "/Hotels-g5-Big-Hotels.html" => {
            // 40 hotels whose detail pages are 4.5 MiB each (the body cap is 5 MiB).
            let hotels: Vec<serde_json::Value> = (5000..5040)
                .map(|id| serde_json::json!({"id": id.to_string(), "name": format!("Big {id}"), "detailUrl": format!("/Hotel_Review-g5-d{id}-Reviews-Big.html"), "bubbleRating": {"rating": 3.0}, "numReviews": 1}))
                .collect();
            (200, format!("<html><body><div data-hotels-data='{}'></div></body></html>", serde_json::json!({"hotels": hotels})))
        }
        p if p.starts_with("/Hotel_Review-g5-d") => {
            let filler = "x".repeat(4_500_000);
            (200, format!(r#"<html><body><div data-ssrev-handlers='{{"locationDescription":"big"}}'></div><p>{filler}</p></body></html>"#))
        }
        "/Hotels-g3-Deep-Hotels.html" | "/Hotels-g4-Bold-Hotels.html" => {
            // One hotel under a million unclosed elements (block or formatting).
            let tag = if path.contains("Deep") { "<div>" } else { "<b>" };
            let hotel = serde_json::json!({"hotels": [{"id": "1000", "name": "Deep", "detailUrl": detail(1000), "bubbleRating": {"rating": 1.0}, "numReviews": 1}]});
            (200, format!("<html><body>{}<div data-hotels-data='{hotel}'></div>", tag.repeat(1_000_000)))
        }
        p if ["/Hotels-g7-", "/Hotels-g8-", "/Hotels-g9-"].iter().any(|g| p.starts_with(g)) => {
            // The cities the typeahead finds: 10 hotels each, 1700.., 1800.., 1900..
            let n: u32 = p[9..10].parse().unwrap_or(7);
            let name = p.split('-').nth(2).unwrap_or("City").to_owned();
            let first = 1000 + n * 100;
            let hotels: Vec<serde_json::Value> = (first..first + 10)
                .map(|id| serde_json::json!({"id": id.to_string(), "name": format!("{name} Stay {id}"), "detailUrl": detail(id), "bubbleRating": {"rating": 4.0}, "numReviews": id}))
                .collect();
            (200, format!("<html><body><div data-hotels-data='{}'></div></body></html>", serde_json::json!({"hotels": hotels})))
        }
        p if p.starts_with("/Hotels-g1-oa") => {
            // pages 3.. : JSON like page 1, 30 hotels from the page's offset
            let offset: u32 = p["/Hotels-g1-oa".len()..].split('-').next().and_then(|d| d.parse().ok()).unwrap_or(0);
            let hotels: Vec<serde_json::Value> = (1000 + offset..1030 + offset)
                .map(|id| serde_json::json!({"id": id.to_string(), "name": format!("H{id:05}"), "detailUrl": detail(id), "bubbleRating": {"rating": 3.5}, "numReviews": id}))
                .collect();
            let data = serde_json::json!({"hotels": hotels}).to_string().replace('\'', "&#39;");
            (200, format!("<html><body><div data-hotels-data='{data}'></div></body></html>"))
        }
        p if p.starts_with("/Hotel_Review-g1-d") => {
            let id: u32 = p["/Hotel_Review-g1-d".len()..].split('-').next().and_then(|d| d.parse().ok()).unwrap_or(0);
            match id {
                1007 => (500, "boom".into()),
                1005 => (200, "<html><body><h1>no data</h1>".into()),
                3000.. => (200, r#"<html><body><div data-ssrev-handlers='{"locationDescription":"<script>window.__xss=2</script><b onmouseover=window.__xss=3>bold</b>"}'></div></body></html>"#.into()),
                _ => {
                    let summary = format!(r#"{{"reviewSummary":{{"rating":4.5,"count":{}}},"popIndexDetails":{{"popIndexRank":{},"popIndexTotal":60}}}}"#, id * 2, id - 999);
                    let summary = if id % 2 == 1 { summary.replace('"', "\\\"") } else { summary };
                    (200, format!(
                        r#"<html><body><div data-ssrev-handlers='{{"locationDescription":"Hotel {id} by the sea"}}'></div><script>var s = "{summary}";</script><svg aria-label="4.0 of 5 bubbles"></svg></body></html>"#
                    ))
                }
            }
        }
        _ => (404, "not found".into()),
    }
}

/// The places the fixture site's typeahead knows: name, region, list page.
const HOTEL_SITE_PLACES: &[(&str, &str, &str)] = &[
    ("Lisbon", "Lisbon District, Portugal", "/Hotels-g8-Lisbon-Hotels.html"),
    ("Lisburn", "Northern Ireland, United Kingdom", "/Hotels-g9-Lisburn-Hotels.html"),
    ("Reykjavik", "Capital Region, Iceland", "/Hotels-g7-Reykjavik-Hotels.html"),
];

/// The site's typeahead answer (POST /data/graphql/ids) in TripAdvisor's
/// shape: a query suggestion first (no hotel list page), then the places
/// whose name starts with the query, any case.
fn hotel_site_typeahead(body: &[u8]) -> (u16, String) {
    let Ok(req) = serde_json::from_slice::<serde_json::Value>(body) else { return (400, "bad request".into()) };
    let Some(query) = req.pointer("/0/variables/request/query").and_then(|q| q.as_str()) else { return (400, "no query".into()) };
    let q = query.trim().to_lowercase();
    let mut results = vec![serde_json::json!({"__typename": "Typeahead_QuerySuggestionItem", "text": format!("{query} hotels")})];
    for (i, (name, region, path)) in HOTEL_SITE_PLACES.iter().enumerate() {
        if !q.is_empty() && name.to_lowercase().starts_with(&q) {
            results.push(serde_json::json!({
                "__typename": "Typeahead_LocationItem", "documentId": format!("loc;{i};g{i}"), "locationId": i,
                "details": {"localizedName": name, "localizedAdditionalNames": {"longOnlyHierarchy": region}, "placeType": "CITY", "HOTELS_URL": path},
            }));
        }
    }
    (200, serde_json::json!([{"data": {"Typeahead_autocomplete": {"results": results}}}]).to_string())
}

/// The fixture site's robots.txt: every page but hotel 1003's allowed.
pub const HOTEL_SITE_ROBOTS: &str = "User-agent: *\nDisallow: /Hotel_Review-g1-d1003-\n";

impl HotelSite {
    pub async fn start(latency: Duration) -> anyhow::Result<Self> {
        Self::start_with_slow_page(latency, None).await
    }

    pub async fn start_with_slow_page(latency: Duration, slow: Option<u32>) -> anyhow::Result<Self> {
        Self::start_with_robots(latency, slow, (200, HOTEL_SITE_ROBOTS.to_owned())).await
    }

    /// The site answering `/robots.txt` with this status and body.
    pub async fn start_with_robots(latency: Duration, slow: Option<u32>, robots: (u16, String)) -> anyhow::Result<Self> {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let robots = robots.clone();
                tokio::spawn(async move {
                    let Some((head, body)) = read_request(&mut s).await else { return };
                    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                    tokio::time::sleep(latency).await;
                    if slow.is_some_and(|id| path.starts_with(&format!("/Hotel_Review-g1-d{id}-"))) {
                        tokio::time::sleep(Duration::from_secs(3)).await;
                    }
                    let (status, body) = match path.as_str() {
                        "/robots.txt" => robots.clone(),
                        "/data/graphql/ids" if head.starts_with("POST ") => hotel_site_typeahead(&body),
                        _ => hotel_site_page(&path),
                    };
                    let out = format!("HTTP/1.1 {status} X\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                    let _ = s.write_all(out.as_bytes()).await;
                    let _ = s.shutdown().await;
                });
            }
        });
        Ok(Self { port })
    }
}

/// A hostile hotel site for fuzzing the scraper: every page is made from a
/// seeded generator keyed by the seed and the path, so a run is repeatable.
/// List pages (`/Hotels-g<case>-...`) and detail pages
/// (`/Hotel_Review-g<case>-d<id>-...`) are, by turns: arbitrary bytes
/// (invalid UTF-8 included), tag soup built from the selectors the profile
/// looks for, the right JSON with hostile values (ids of kilobytes, empty or
/// megabyte names, NUL, numbers out of range, links to other hosts and to
/// the metadata address), summaries with `NaN` and overflowing counts, pages
/// over the 5 MiB cap, and responses that lie (a Content-Length longer than
/// the body, a gzip encoding over bytes that are not gzip).
pub struct HostileSite {
    pub port: u16,
    /// Pages served so far.
    pub served: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

fn hostile_page(seed: u64, path: &str) -> (u16, Vec<(&'static str, String)>, Vec<u8>) {
    use rand::{Rng, SeedableRng};
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (seed, path).hash(&mut h);
    let mut rng = rand::rngs::StdRng::seed_from_u64(h.finish());
    let case: u32 = path.split('-').nth(1).and_then(|g| g.strip_prefix('g')).and_then(|g| g.parse().ok()).unwrap_or(0);
    let detail = |rng: &mut rand::rngs::StdRng| -> String {
        match rng.gen_range(0..8) {
            0 => "http://169.254.169.254/latest/meta-data/".into(),
            1 => "//evil.example/Hotel_Review-g1-d1-x.html".into(),
            2 => "javascript:alert(1)".into(),
            3 => format!("/Hotel_Review-g{case}-d{}-{}.html", rng.gen::<u32>(), "x".repeat(rng.gen_range(0..5000))),
            _ => format!("/Hotel_Review-g{case}-d{}-Reviews.html", rng.gen_range(1..50)),
        }
    };
    let text = |rng: &mut rand::rngs::StdRng| -> String {
        match rng.gen_range(0..9) {
            0 => String::new(),
            1 => "\u{0}".repeat(rng.gen_range(1..4)),
            2 => "n".repeat(rng.gen_range(1_000..300_000)),
            3 => "<script>alert(1)</script>\u{202e}".into(),
            4 => "   ".into(),
            5 => "🏨".repeat(rng.gen_range(1..500)),
            _ => format!("Hotel {}", rng.gen::<u16>()),
        }
    };
    let value = |rng: &mut rand::rngs::StdRng| -> serde_json::Value {
        match rng.gen_range(0..8) {
            0 => serde_json::json!(rng.gen::<i64>()),
            1 => serde_json::json!(1e308),
            2 => serde_json::json!(-3.5),
            3 => serde_json::json!("NaN"),
            4 => serde_json::Value::Null,
            5 => serde_json::json!([[[1]]]),
            _ => serde_json::json!(rng.gen_range(0.0..5.0)),
        }
    };
    let id = |rng: &mut rand::rngs::StdRng| -> serde_json::Value {
        match rng.gen_range(0..8) {
            0 => serde_json::json!("9".repeat(rng.gen_range(65..20_000))),
            1 => serde_json::json!(""),
            2 => serde_json::json!(rng.gen::<u64>()),
            3 => serde_json::json!("a b\u{0}c"),
            4 => serde_json::json!({"id": 1}),
            5 => serde_json::json!(-1.5),
            _ => serde_json::json!(rng.gen_range(1..60).to_string()),
        }
    };
    let soup = |rng: &mut rand::rngs::StdRng, n: usize| -> Vec<u8> {
        const PIECES: &[&str] = &[
            "<div data-hotels-data='", "{\"hotels\":[{\"id\":", "<div data-automation=\"card\"><a href=\"/Hotel_Review-g1-d7-x.html\">",
            "</a></div>", "<div data-ssrev-handlers='{\"locationDescription\":\"", "\"}'>", "<svg aria-label=\"NaN of 5 bubbles\">",
            "reviewSummary\":{\"rating\":", "\"popIndexDetails\":{\"popIndexRank\":", "99999999999999999999", "<!--", "-->", "<![CDATA[",
            "&#x0;", "&amp;", "<script>", "</script>", "<table><tr><td>", "<b><i><u>", "'", "\"", ">", "<", "\u{0}", "\\\"", "é",
        ];
        let mut out = Vec::new();
        for _ in 0..n {
            out.extend_from_slice(PIECES[rng.gen_range(0..PIECES.len())].as_bytes());
        }
        out
    };
    let list_json = |rng: &mut rand::rngs::StdRng| -> Vec<u8> {
        let hotels: Vec<serde_json::Value> = (0..rng.gen_range(0..40))
            .map(|_| serde_json::json!({"id": id(rng), "name": text(rng), "detailUrl": detail(rng), "bubbleRating": {"rating": value(rng), "count": value(rng)}, "numReviews": value(rng)}))
            .collect();
        let data = serde_json::json!({"hotels": hotels}).to_string().replace('\'', "&#39;");
        format!("<html><body><div data-hotels-data='{data}'></div></body></html>").into_bytes()
    };
    let detail_page = |rng: &mut rand::rngs::StdRng| -> Vec<u8> {
        let description = serde_json::json!({"locationDescription": text(rng)}).to_string().replace('\'', "&#39;");
        let n = |rng: &mut rand::rngs::StdRng| ["NaN", "1e999", "-7", "99999999999999", "4.5", "", "1.2.3"][rng.gen_range(0..7)];
        format!(
            r#"<html><body><div data-ssrev-handlers='{description}'></div><script>var s = {{"reviewSummary":{{"rating":{},"count":{}}},"popIndexDetails":{{"popIndexRank":{},"popIndexTotal":{}}}}};</script><svg aria-label="{} of 5 bubbles"></svg></body></html>"#,
            n(rng), n(rng), n(rng), n(rng), n(rng)
        )
        .into_bytes()
    };
    let is_list = path.starts_with("/Hotels-");
    let html = |body: Vec<u8>| (200, vec![("Content-Type", "text/html".to_owned())], body);
    match rng.gen_range(0..10) {
        0 => html((0..rng.gen_range(0..65_536)).map(|_| rng.gen::<u8>()).collect()),
        1 => {
            let n = rng.gen_range(1..20_000);
            html(soup(&mut rng, n))
        }
        2 => html(vec![b'x'; 6 << 20]),
        3 => {
            // A lying Content-Length: the connection closes early.
            let body = if is_list { list_json(&mut rng) } else { detail_page(&mut rng) };
            (200, vec![("Content-Type", "text/html".to_owned()), ("X-Lie", (body.len() * 2).to_string())], body)
        }
        4 => (200, vec![("Content-Type", "text/html".to_owned()), ("Content-Encoding", "gzip".to_owned())], b"not gzip at all".to_vec()),
        5 => ([301, 404, 500, 503, 418][rng.gen_range(0..5)], vec![("Location", "http://169.254.169.254/".to_owned())], b"no".to_vec()),
        _ if is_list => html(list_json(&mut rng)),
        _ => html(detail_page(&mut rng)),
    }
}

impl HostileSite {
    pub async fn start(seed: u64) -> anyhow::Result<Self> {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = std::sync::Arc::clone(&served);
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let counter = std::sync::Arc::clone(&counter);
                tokio::spawn(async move {
                    let Some(head) = read_request_head(&mut s).await else { return };
                    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                    let (status, headers, body) = if path == "/robots.txt" { (404, Vec::new(), Vec::new()) } else { hostile_page(seed, &path) };
                    let mut length = body.len().to_string();
                    let mut head = format!("HTTP/1.1 {status} X\r\n");
                    for (name, value) in headers {
                        if name == "X-Lie" {
                            length = value;
                        } else {
                            head.push_str(&format!("{name}: {value}\r\n"));
                        }
                    }
                    head.push_str(&format!("Content-Length: {length}\r\nConnection: close\r\n\r\n"));
                    let _ = s.write_all(head.as_bytes()).await;
                    let _ = s.write_all(&body).await;
                    let _ = s.shutdown().await;
                });
            }
        });
        Ok(Self { port, served })
    }
}

/// Settings of the S3-compatible test server that scripts/test.sh starts
/// (s3s-fs), with a bucket of the test's own.
pub fn s3_args(bucket: &str) -> crunch_blob::BlobArgs {
    let mut a = crunch_blob::BlobArgs::local("/nonexistent");
    a.blob_backend = crunch_blob::Backend::S3;
    a.s3_endpoint = Some(std::env::var("TEST_S3_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:9400".into()));
    a.s3_access_key_id = Some(std::env::var("TEST_S3_ACCESS_KEY").unwrap_or_else(|_| "crunch-dev".into()));
    a.s3_secret_access_key = Some(std::env::var("TEST_S3_SECRET_KEY").unwrap_or_else(|_| "crunch-dev-secret".into()).into());
    a.s3_bucket = bucket.into();
    a
}

/// A scrape profile file (the built-in TripAdvisor profile) whose city list is
/// `cities` (name -> list page path), for tests against a `HotelSite`.
pub fn hotel_profile(cities: serde_json::Value) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("crunch-profile-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    let mut profile: Value = serde_json::from_str(include_str!("../../worker/profiles/tripadvisor.json"))?;
    profile["cities"] = cities;
    let file = dir.join("profile.json");
    std::fs::write(&file, profile.to_string())?;
    Ok(file)
}

/// The reasons (`x-crunch-reason`) of the first `want` messages of the
/// namespace's dead-letter topic, read from the start for at most `within`.
pub fn dead_letter_reasons(namespace: &str, want: usize, within: Duration) -> anyhow::Result<Vec<String>> {
    use rdkafka::consumer::{Consumer, StreamConsumer};
    use rdkafka::message::Headers;
    use rdkafka::Message;
    let k = kafka_args(namespace);
    let consumer: StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &k.kafka_brokers)
        .set("group.id", format!("{namespace}-dlq-reader-{}", Uuid::new_v4().simple()))
        .set("auto.offset.reset", "earliest")
        .create()?;
    consumer.subscribe(&[&k.kafka_topic_dead])?;
    let rt = tokio::runtime::Handle::current();
    let mut reasons = Vec::new();
    let t = Instant::now();
    while reasons.len() < want && t.elapsed() < within {
        let got = tokio::task::block_in_place(|| rt.block_on(tokio::time::timeout(Duration::from_secs(2), consumer.recv())));
        if let Ok(Ok(m)) = got {
            let reason = m.headers().and_then(|h| h.iter().find(|h| h.key == "x-crunch-reason").and_then(|h| h.value.map(|v| String::from_utf8_lossy(v).into_owned())));
            reasons.push(reason.unwrap_or_default());
        }
    }
    Ok(reasons)
}

/// A worker's settings for scrapes of a `HotelSite` on `port` with a
/// `hotel_profile` file: the site allowlisted, no pacing.
pub fn hotel_site_worker_env(port: u16, profile: &std::path::Path) -> Vec<(String, String)> {
    vec![
        ("CRUNCH_SSRF_ALLOWLIST".into(), "127.0.0.1/32".into()),
        ("CRUNCH_SCRAPE_PROFILE_FILE".into(), profile.display().to_string()),
        ("CRUNCH_SCRAPE_BASE_URL".into(), format!("http://127.0.0.1:{port}")),
        ("CRUNCH_SCRAPE_MIN_INTERVAL_MS".into(), "0".into()),
    ]
}

/// 2^e - 1 (a prime for e = 61, 89, 107, 127).
pub fn mersenne(e: u32) -> num_bigint::BigUint {
    (num_bigint::BigUint::from(1u32) << e) - 1u32
}

/// (2^a - 1)(2^b - 1) in decimal: with Mersenne prime exponents (61, 89, 107,
/// 127), a balanced semiprime no cheap method splits; the quadratic sieve's
/// time grows with a + b (196 bits: a second or two, 234: tens of seconds).
pub fn mersenne_semiprime(a: u32, b: u32) -> String {
    (mersenne(a) * mersenne(b)).to_str_radix(10)
}
