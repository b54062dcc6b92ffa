//! Persister throughput: produces N selection messages to a fresh topic,
//! starts the release `crunch-persister` on it and times until all are stored.
//! Used by `scripts/bench-selections.sh`; prints one table row.
//!
//!   crunch-bench-selections N PERSISTER_BINARY [KILLS]
//!
//! With KILLS, the persister is SIGKILLed and restarted that many times, at
//! evenly spread fractions of the stored count: every selection must still be
//! stored exactly once (the row count is checked against N, and the table's
//! key rules out duplicates).

use std::process::Stdio;
use std::time::{Duration, Instant};

use diesel::sql_types::BigInt;
use diesel::{Connection, PgConnection, RunQueryDsl};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let n: i64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let persister = args.get(2).cloned().unwrap_or_else(|| "crunch-persister".into());
    let kills: i64 = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(0);
    let db = crunch_e2e::fresh_database()?;
    let ns = format!("bench{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    {
        let pool = crunch_store::connect(&crunch_store::PoolConfig { url: db.clone(), max_size: 1, connect_timeout: Duration::from_secs(5) })?;
        let mut c = pool.get()?;
        crunch_store::run_migrations(&mut c)?;
    }
    let mut conn = PgConnection::establish(&db)?;
    let hotels = 10_000i64;
    let owners = (n + hotels - 1) / hotels;
    diesel::sql_query(format!("INSERT INTO hotels (source, source_id, name) SELECT 'bench', g::text, 'H' || g FROM generate_series(1, {hotels}) g"))
        .execute(&mut conn)?;
    diesel::sql_query(format!(
        "INSERT INTO api_keys (id, name, key_hash) SELECT gen_random_uuid(), 'o' || g, decode(md5(g::text), 'hex') FROM generate_series(1, {owners}) g"
    ))
    .execute(&mut conn)?;
    #[derive(diesel::QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        id: uuid::Uuid,
    }
    let keys: Vec<uuid::Uuid> = diesel::sql_query("SELECT id FROM api_keys ORDER BY name").load::<Id>(&mut conn)?.into_iter().map(|r| r.id).collect();
    let k = crunch_e2e::kafka_args(&ns);
    crunch_bus::kafka::ensure_topics(&crunch_service::KafkaArgs::kafka_config(&k)).await?;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &k.kafka_brokers)
        .set("linger.ms", "20")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "1000000")
        .create()?;
    let at = chrono::Utc::now();
    let mut pending = Vec::with_capacity(n as usize);
    for i in 0..n {
        let owner = keys[(i / hotels) as usize];
        let payload = serde_json::json!({"owner_id": owner, "op": "add", "hotel_ids": [i % hotels + 1], "at": at}).to_string();
        let key = owner.to_string();
        let topic = k.kafka_topic_selections.clone();
        let p = producer.clone();
        pending.push(tokio::spawn(async move { p.send(FutureRecord::to(&topic).key(&key).payload(&payload), Duration::from_secs(60)).await.map(|_| ()).map_err(|(e, _)| e) }));
    }
    for p in pending {
        p.await??;
    }
    let started = Instant::now();
    let mut child = crunch_e2e::persister_command(std::path::Path::new(&persister), &db, &ns).stdout(Stdio::null()).spawn()?;
    let mut first_row = None;
    let mut killed = 0;
    loop {
        let c: Count = diesel::sql_query("SELECT count(*) AS n FROM selections").get_result(&mut conn)?;
        if c.n > 0 && first_row.is_none() {
            first_row = Some(started.elapsed());
        }
        if killed < kills && c.n >= n * (killed + 1) / (kills + 1) {
            let _ = child.kill();
            let _ = child.wait();
            killed += 1;
            eprintln!("persister SIGKILLed ({killed} of {kills}) with {} of {n} stored", c.n);
            child = crunch_e2e::persister_command(std::path::Path::new(&persister), &db, &ns).stdout(Stdio::null()).spawn()?;
        }
        if c.n >= n {
            break;
        }
        if started.elapsed() > Duration::from_secs(300) {
            let _ = child.kill();
            anyhow::bail!("only {} of {n} stored after 300 s", c.n);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let total = started.elapsed();
    // A moment for anything late (a replay after the last kill) to show up.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let c: Count = diesel::sql_query("SELECT count(*) AS n FROM selections").get_result(&mut conn)?;
    let _ = child.kill();
    anyhow::ensure!(c.n == n, "{} rows for {n} selections", c.n);
    let steady = total - first_row.unwrap_or_default();
    println!(
        "| {n} | {kills} | {:.2} | {:.2} | {:.0} | {:.0} |",
        total.as_secs_f64(),
        first_row.unwrap_or_default().as_secs_f64(),
        n as f64 / total.as_secs_f64(),
        n as f64 / steady.as_secs_f64().max(0.001)
    );
    Ok(())
}
