//! Load and scale-out, against the release gateway and workers as processes
//! (from `CRUNCH_BIN_DIR`). Used by `scripts/bench-load.sh`; prints table rows.
//!
//!   crunch-bench-load submit RATE SECS WORKERS
//!       open-loop submission at RATE jobs/s for SECS s (each request sent at
//!       its scheduled time, whatever the previous ones are doing), latency per
//!       request; the workers run meanwhile.
//!   crunch-bench-load drain JOBS WORKERS
//!       JOBS jobs queued first, then WORKERS worker processes started: time
//!       until every job has succeeded (end-to-end jobs/s).
//!   crunch-bench-load chaos JOBS KILLS
//!       JOBS jobs submitted while one of two workers is SIGKILLed at KILLS
//!       random moments and restarted: then every job must have succeeded
//!       with exactly one terminal event in the outbox and exactly one
//!       `succeeded` event on a WebSocket client.
//!
//! Every job is a factorization of a distinct small number (a trivial job:
//! the cost measured is the platform's, not the arithmetic's).

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use diesel::{Connection, PgConnection, RunQueryDsl};

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

struct Stack {
    db: String,
    base: String,
    key: String,
    ns: String,
    gateway: Child,
    workers: Vec<Child>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        for c in self.workers.iter_mut().chain(std::iter::once(&mut self.gateway)) {
            let _ = c.kill();
            let _ = c.wait();
        }
        crunch_e2e::delete_namespace(&self.ns);
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn service(name: &str, db: &str, ns: &str) -> Command {
    let mut cmd = Command::new(crunch_e2e::binary(name));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CRUNCH_ENV_FILE", "/nonexistent")
        // As in the Swarm stack, where PostgreSQL has no TLS (the overlay
        // network is encrypted): the local server here offers TLS, which
        // libpq would take by default.
        .env("DATABASE_URL", format!("{db}?sslmode=disable"))
        .env("AMQP_URL", crunch_e2e::amqp_url())
        .env("CRUNCH_AMQP_NAMESPACE", ns)
        .env("CRUNCH_QUEUE_EXPIRES_MS", "600000")
        .env("RUST_LOG", "warn")
        // Settings to try (CRUNCH_WORKER_QUICK_BATCH=64 ...) pass through.
        .envs(std::env::vars().filter(|(k, _)| k.starts_with("CRUNCH_") && k != "CRUNCH_BIN_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    cmd
}

impl Stack {
    async fn start() -> anyhow::Result<Self> {
        let db = crunch_e2e::fresh_database()?;
        let ns = format!("load{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let port = free_port()?;
        let k = crunch_e2e::kafka_args(&ns);
        let gateway = service("crunch-gateway", &db, &ns)
            .env("CRUNCH_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .env("CRUNCH_RATE_LIMIT_PER_SEC", "0")
            // one key submits the whole load, queued without a worker
            .env("CRUNCH_MAX_QUEUED_JOBS_PER_KEY", "0")
            .env("CRUNCH_DB_POOL_SIZE", "32")
            .env("KAFKA_BROKERS", &k.kafka_brokers)
            .env("CRUNCH_KAFKA_TOPIC_SELECTIONS", &k.kafka_topic_selections)
            .env("CRUNCH_KAFKA_TOPIC_DEAD", &k.kafka_topic_dead)
            .env("CRUNCH_BLOB_DIR", crunch_e2e::blob_dir(&ns))
            .spawn()
            .context("starting crunch-gateway")?;
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let t = Instant::now();
        while http.get(format!("{base}/readyz")).send().await.map(|r| r.status() != 200).unwrap_or(true) {
            anyhow::ensure!(t.elapsed() < Duration::from_secs(30), "the gateway did not become ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let key = crunch_e2e::create_key(&db, "load")?;
        Ok(Self { db, base, key, ns, gateway, workers: Vec::new() })
    }

    /// One more worker process on this stack.
    fn worker(&self) -> anyhow::Result<Child> {
        service("crunch-worker", &self.db, &self.ns)
            .env("CRUNCH_WORKER_HEALTH_ADDR", "127.0.0.1:0")
            .env("CRUNCH_BLOB_DIR", crunch_e2e::blob_dir(&self.ns))
            .spawn()
            .context("starting crunch-worker")
    }

    fn spawn_workers(&mut self, n: usize) -> anyhow::Result<()> {
        for _ in 0..n {
            let child = self.worker()?;
            self.workers.push(child);
        }
        Ok(())
    }
}

/// Jobs that have succeeded so far.
fn succeeded(conn: &mut PgConnection) -> anyhow::Result<i64> {
    let c: Count = diesel::sql_query("SELECT count(*) AS n FROM jobs WHERE status = 'succeeded'").get_result(conn)?;
    Ok(c.n)
}

fn client() -> anyhow::Result<reqwest::Client> {
    // Idle connections are dropped before the gateway's keep-alive (5 s) closes them.
    Ok(reqwest::Client::builder().pool_max_idle_per_host(512).pool_idle_timeout(Duration::from_secs(3)).timeout(Duration::from_secs(10)).build()?)
}

async fn submit(http: &reqwest::Client, base: &str, key: &str, n: u64) -> Result<(), String> {
    let body = serde_json::json!({"kind": "factorize", "params": {"n": n.to_string()}});
    match http.post(format!("{base}/api/v1/jobs")).bearer_auth(key).json(&body).send().await {
        Ok(r) if r.status() == 202 => Ok(()),
        Ok(r) => Err(format!("HTTP {}", r.status())),
        Err(e) => Err(e.to_string()),
    }
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

async fn run_submit(rate: u64, secs: u64, workers: usize) -> anyhow::Result<()> {
    let mut stack = Stack::start().await?;
    stack.spawn_workers(workers)?;
    let http = client()?;
    // Warm the connection pool.
    for i in 0..200u64 {
        let _ = submit(&http, &stack.base, &stack.key, 1_000_000_000 + i).await;
    }
    let total = rate * secs;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Duration, Duration, Result<(), String>, u64)>();
    let base = Arc::new(stack.base.clone());
    let key = Arc::new(stack.key.clone());
    let start = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sent = 0u64;
    while sent < total {
        ticker.tick().await;
        // Request i is due at i / rate.
        let due = ((start.elapsed().as_secs_f64() * rate as f64) as u64 + 1).min(total);
        while sent < due {
            let scheduled = start + Duration::from_secs_f64(sent as f64 / rate as f64);
            let (http, base, key, tx) = (http.clone(), base.clone(), key.clone(), tx.clone());
            let n = 2_000_000_000 + sent;
            tokio::spawn(async move {
                let t = Instant::now();
                let r = submit(&http, &base, &key, n).await;
                // Latency from the scheduled time (no coordinated omission) and from sending.
                let _ = tx.send((scheduled.elapsed(), t.elapsed(), r, sent / rate));
            });
            sent += 1;
        }
    }
    drop(tx);
    let mut from_schedule = Vec::with_capacity(total as usize);
    let mut from_send = Vec::with_capacity(total as usize);
    let mut errors: std::collections::BTreeMap<String, u64> = Default::default();
    let mut per_second: Vec<Vec<Duration>> = vec![Vec::new(); secs as usize + 1];
    while let Some((a, b, r, second)) = rx.recv().await {
        per_second[(second as usize).min(secs as usize)].push(a);
        from_schedule.push(a);
        from_send.push(b);
        if let Err(e) = r {
            *errors.entry(e).or_default() += 1;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    // Where the tail comes from: the p99 of each second of the schedule.
    let p99s: Vec<String> = per_second
        .iter_mut()
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.sort();
            format!("{:.0}", pct(v, 0.99))
        })
        .collect();
    eprintln!("p99 (ms) of each second: {}", p99s.join(" "));
    from_schedule.sort();
    from_send.sort();
    let ok = total - errors.values().sum::<u64>();
    println!(
        "| {rate} | {secs} | {workers} | {total} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
        ok as f64 / elapsed,
        pct(&from_schedule, 0.5),
        pct(&from_schedule, 0.99),
        pct(&from_send, 0.99),
        pct(&from_schedule, 1.0),
        if errors.is_empty() { "none".to_owned() } else { format!("{errors:?}") }
    );
    if workers == 0 {
        return Ok(());
    }
    // Every accepted job completes.
    let mut conn = PgConnection::establish(&stack.db)?;
    let want = ok as i64 + 200;
    let t = Instant::now();
    while succeeded(&mut conn)? < want && t.elapsed() < Duration::from_secs(600) {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!("all {} accepted jobs succeeded {:.1} s after the last submission", succeeded(&mut conn)?, t.elapsed().as_secs_f64());
    Ok(())
}

async fn run_drain(jobs: u64, workers: usize) -> anyhow::Result<()> {
    let mut stack = Stack::start().await?;
    let http = client()?;
    let base = Arc::new(stack.base.clone());
    let key = Arc::new(stack.key.clone());
    let sem = Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = Vec::with_capacity(jobs as usize);
    for i in 0..jobs {
        let permit = sem.clone().acquire_owned().await?;
        let (http, base, key) = (http.clone(), base.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            let r = submit(&http, &base, &key, 3_000_000_000 + i).await;
            drop(permit);
            r
        }));
    }
    for t in tasks {
        t.await?.map_err(|e| anyhow::anyhow!(e))?;
    }
    let mut conn = PgConnection::establish(&stack.db)?;
    #[derive(diesel::QueryableByName)]
    struct Secs {
        #[diesel(sql_type = diesel::sql_types::Double)]
        s: f64,
    }
    // Timed from the database's clock: from here to the last job's finish
    // (polling rarely, so that the count does not load the database).
    let t0: Secs = diesel::sql_query("SELECT extract(epoch FROM clock_timestamp())::float8 AS s").get_result(&mut conn)?;
    let start = Instant::now();
    stack.spawn_workers(workers)?;
    while succeeded(&mut conn)? < jobs as i64 {
        anyhow::ensure!(start.elapsed() < Duration::from_secs(900), "jobs did not all finish");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let t1: Secs = diesel::sql_query("SELECT extract(epoch FROM max(finished_at))::float8 AS s FROM jobs").get_result(&mut conn)?;
    let first: Secs = diesel::sql_query("SELECT extract(epoch FROM min(finished_at))::float8 AS s FROM jobs").get_result(&mut conn)?;
    let secs = t1.s - t0.s;
    eprintln!("first job finished {:.3} s after the workers were started; the rest took {:.3} s", first.s - t0.s, t1.s - first.s);
    println!("| {workers} | {jobs} | {secs:.2} | {:.0} |", jobs as f64 / secs);
    Ok(())
}

async fn run_chaos(jobs: u64, kills: u64) -> anyhow::Result<()> {
    use futures::StreamExt;
    use rand::Rng;
    let mut stack = Stack::start().await?;
    stack.spawn_workers(2)?;
    // A WebSocket client counts `succeeded` events per job.
    let url = format!("{}/api/v1/events?access_token={}", stack.base.replace("http://", "ws://"), stack.key);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
    let seen = Arc::new(std::sync::Mutex::new(std::collections::HashMap::<String, u32>::new()));
    let counter = seen.clone();
    tokio::spawn(async move {
        while let Some(Ok(msg)) = ws.next().await {
            let Ok(text) = msg.into_text() else { continue };
            let Ok(ev) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
            if ev["type"] == "succeeded" {
                if let (Some(id), Ok(mut m)) = (ev["job_id"].as_str(), counter.lock()) {
                    *m.entry(id.to_owned()).or_default() += 1;
                }
            }
        }
    });
    let http = client()?;
    let (base, key) = (Arc::new(stack.base.clone()), Arc::new(stack.key.clone()));
    let start = Instant::now();
    let submitter = tokio::spawn(async move {
        let sem = Arc::new(tokio::sync::Semaphore::new(32));
        let mut tasks = Vec::new();
        for i in 0..jobs {
            let Ok(permit) = sem.clone().acquire_owned().await else { break };
            let (http, base, key) = (http.clone(), base.clone(), key.clone());
            tasks.push(tokio::spawn(async move {
                // Retried until accepted: a refused submission is the client's to repeat.
                loop {
                    if submit(&http, &base, &key, 4_000_000_000 + i).await.is_ok() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                drop(permit);
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
    // Kills at random points of the run: when the succeeded count passes
    // random fractions (2% to 95%) of the jobs, so that every kill lands
    // mid-run whatever the speed.
    let mut points: Vec<i64> = (0..kills).map(|_| (jobs as f64 * rand::thread_rng().gen_range(0.02..0.95)) as i64).collect();
    points.sort_unstable();
    let mut conn = PgConnection::establish(&stack.db)?;
    for (k, point) in points.into_iter().enumerate() {
        let mut done = succeeded(&mut conn)?;
        while done < point {
            tokio::time::sleep(Duration::from_millis(20)).await;
            done = succeeded(&mut conn)?;
        }
        let i = rand::thread_rng().gen_range(0..stack.workers.len());
        let _ = stack.workers[i].kill();
        let _ = stack.workers[i].wait();
        eprintln!("kill {} of {kills}: worker {i} SIGKILLed at {:.1} s ({done} jobs succeeded so far)", k + 1, start.elapsed().as_secs_f64());
        stack.workers[i] = stack.worker()?;
    }
    submitter.await?;
    while succeeded(&mut conn)? < jobs as i64 {
        anyhow::ensure!(start.elapsed() < Duration::from_secs(900), "only {} of {jobs} jobs succeeded", succeeded(&mut conn)?);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    // Give the last events time to arrive.
    tokio::time::sleep(Duration::from_secs(3)).await;
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        jobs: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        doubled_event: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        without_result: i64,
    }
    // Quick jobs have no outbox row (their messages carry the events'
    // delivery): exactly one `succeeded` is counted on the WebSocket below.
    let r: Row = diesel::sql_query(
        "SELECT count(*) AS jobs, \
                count(*) FILTER (WHERE (SELECT count(*) FROM job_events e WHERE e.job_id = j.id) > 1) AS doubled_event, \
                count(*) FILTER (WHERE j.result IS NULL) AS without_result \
         FROM jobs j WHERE j.status = 'succeeded'",
    )
    .get_result(&mut conn)?;
    let seen = seen.lock().map(|m| m.clone()).unwrap_or_default();
    let ws_once = seen.values().filter(|n| **n == 1).count();
    let ws_more = seen.values().filter(|n| **n > 1).count();
    println!("| {jobs} | {kills} | {secs:.1} | {} | {} | {} | {ws_once} | {ws_more} |", r.jobs, r.without_result, r.doubled_event);
    anyhow::ensure!(r.jobs == jobs as i64 && r.without_result == 0 && r.doubled_event == 0, "a job lost or doubled");
    anyhow::ensure!(ws_once == jobs as usize && ws_more == 0, "WebSocket: {ws_once} jobs with one succeeded event, {ws_more} with more");
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let num = |i: usize, d: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    match args.get(1).map(String::as_str) {
        Some("submit") => run_submit(num(2, 2000), num(3, 60), num(4, 1) as usize).await,
        Some("drain") => run_drain(num(2, 20_000), num(3, 1) as usize).await,
        Some("chaos") => run_chaos(num(2, 10_000), num(3, 20)).await,
        _ => anyhow::bail!("usage: crunch-bench-load submit RATE SECS WORKERS | drain JOBS WORKERS | chaos JOBS KILLS"),
    }
}
