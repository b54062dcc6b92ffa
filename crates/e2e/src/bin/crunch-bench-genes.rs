//! Gene files, upload to all stored and back: starts a gateway (in process)
//! and one release `crunch-worker`, then
//!  1. the raw ceiling: the file's rows, parsed and encoded beforehand, written
//!     by plain `COPY ... (FORMAT binary)` from 1 and from WRITERS connections
//!     into a table with only a primary key (`gene_sequences_pending`, empty);
//!  2. upload to all stored: creates a gene file, streams FILE to
//!     `PUT /api/v1/gene-files/{id}/content`, waits until every sequence is
//!     in PostgreSQL; the times and the worker's peak RSS;
//!  3. the result download, `GET .../result`, plain and with gzip;
//!  4. with `--kills N`: the file once more, the worker SIGKILLed at N random
//!     points of the ingest (another started each time); the stored set must
//!     equal step 2's, by count and checksum.
//!
//! Used by `scripts/bench-genes.sh`.
//!
//!   crunch-bench-genes FILE [WRITERS] [--kills N]      (WRITERS: default 2)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crunch_compute::genes::{parse_stream, Format, Item, ParseOptions};
use crunch_compute::Control;
use crunch_domain::GeneFormat;
use crunch_e2e::{Options, TestEnv};
use crunch_store::genes::{CopyRows, BATCH_BYTES};
use diesel::prelude::*;
use serde_json::{json, Value};

/// The file's valid records encoded as the worker batches them (the default
/// `CRUNCH_GENES_BATCH_RECORDS`, 50,000 rows, or `BATCH_BYTES` a batch); the
/// format is inferred from the name as the gateway does.
fn encode(path: &str) -> anyhow::Result<Vec<CopyRows>> {
    let format = match GeneFormat::infer(path) {
        Some(GeneFormat::Fastq) => Format::Fastq,
        Some(GeneFormat::Csv) => Format::Csv,
        Some(GeneFormat::Fasta) | None => Format::Fasta,
    };
    let file_id = uuid::Uuid::new_v4();
    let mut batches = vec![CopyRows::default()];
    parse_stream(std::fs::File::open(path)?, &ParseOptions::new(format), &Control::unlimited(), |items, _| {
        for it in items {
            if let Item::Record(r) = it {
                let last = batches.last_mut().expect("one batch");
                last.push(file_id, r.index as i64, r.line as i64, &r.name, &r.sequence(), r.length as i64, r.gc());
                if last.rows() >= 50_000 || last.bytes() >= BATCH_BYTES {
                    batches.push(CopyRows::default());
                }
            }
        }
        Ok(())
    })
    .map_err(|e| anyhow::anyhow!("parsing {path}: {e}"))?;
    Ok(batches)
}

/// Seconds to write every batch from `conns` connections, one transaction a
/// batch, into `gene_sequences_pending`: a table of the same columns with
/// only its primary key (lz4 like `gene_sequences`), emptied before and after.
fn ceiling(database_url: &str, batches: &[CopyRows], conns: usize) -> anyhow::Result<f64> {
    let mut admin = PgConnection::establish(database_url)?;
    diesel::sql_query("TRUNCATE gene_sequences_pending").execute(&mut admin)?;
    diesel::sql_query("CHECKPOINT").execute(&mut admin)?;
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let threads: Vec<_> = (0..conns)
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<()> {
                    let mut conn = PgConnection::establish(database_url)?;
                    let none = CopyRows::default();
                    while let Some(rows) = batches.get(next.fetch_add(1, Ordering::Relaxed)) {
                        crunch_store::genes::copy_batch(&mut conn, &none, rows)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for t in threads {
            t.join().map_err(|_| anyhow::anyhow!("a writer panicked"))??;
        }
        Ok(())
    })?;
    let secs = started.elapsed().as_secs_f64();
    diesel::sql_query("TRUNCATE gene_sequences_pending").execute(&mut admin)?;
    Ok(secs)
}

/// Downloads the result; returns (bytes on the wire, seconds).
async fn download(env: &TestEnv, id: &str, gzip: bool) -> anyhow::Result<(u64, f64)> {
    let started = Instant::now();
    let mut req = env.http.get(env.url(&format!("/api/v1/gene-files/{id}/result"))).bearer_auth(&env.key).timeout(Duration::from_secs(3600));
    if gzip {
        req = req.header("accept-encoding", "gzip");
    }
    let mut r = req.send().await?;
    anyhow::ensure!(r.status() == 200, "result: {}", r.status());
    anyhow::ensure!(!gzip || r.headers().get("content-encoding").is_some_and(|v| v == "gzip"), "asked for gzip, got {:?}", r.headers().get("content-encoding"));
    let mut bytes = 0u64;
    while let Some(chunk) = r.chunk().await? {
        bytes += chunk.len() as u64;
    }
    Ok((bytes, started.elapsed().as_secs_f64()))
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()
}

/// Creates a gene file and streams `path` to it; returns the file's id, its
/// job's id and how long the upload took.
async fn upload(env: &TestEnv, path: &str) -> anyhow::Result<(String, String, Duration)> {
    let name = std::path::Path::new(path).file_name().and_then(|n| n.to_str()).unwrap_or("bench.fasta").to_owned();
    let file: Value = env.http.post(env.url("/api/v1/gene-files")).bearer_auth(&env.key).json(&json!({"file_name": name})).send().await?.json().await?;
    let id = file["id"].as_str().unwrap_or_default().to_owned();
    let started = Instant::now();
    let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(tokio::fs::File::open(path).await?, 1 << 20));
    let http = reqwest::Client::builder().timeout(Duration::from_secs(3600)).build()?;
    let r = http.put(env.url(&format!("/api/v1/gene-files/{id}/content"))).bearer_auth(&env.key).body(body).send().await?;
    anyhow::ensure!(r.status() == 202, "upload: {}", r.status());
    let job_id = r.json::<Value>().await?["job"]["id"].as_str().unwrap_or_default().to_owned();
    Ok((id, job_id, started.elapsed()))
}

#[derive(Debug, PartialEq, QueryableByName)]
struct Digest {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    rows: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    checksum: Option<String>,
}

/// The stored set of a file: how many rows, and a checksum of every row's
/// columns in file order.
fn digest(env: &TestEnv, file_id: &str) -> anyhow::Result<Digest> {
    Ok(diesel::sql_query(
        "SELECT count(*) AS rows, md5(string_agg(md5(record_index || ':' || line_number || ':' || name || ':' || sequence || ':' || length || ':' || gc), '' \
         ORDER BY record_index)) AS checksum FROM gene_sequences WHERE file_id = $1::uuid",
    )
    .bind::<diesel::sql_types::Text, _>(file_id)
    .get_result(&mut env.db()?)?)
}

/// Step 4: ingests the file again, SIGKILLing the worker `kills` times at
/// random points (each after the checkpoint moved since the last start), and
/// compares the stored set with the clean run's.
async fn killed_run(env: &mut TestEnv, path: &str, clean_id: &str, clean_secs: f64, kills: usize) -> anyhow::Result<()> {
    use rand::Rng;
    let (id, job_id, _) = upload(env, path).await?;
    let file_uuid = uuid::Uuid::parse_str(&id)?;
    let records_done = |env: &TestEnv| -> anyhow::Result<i64> { Ok(crunch_store::genes::get(&mut env.db()?, file_uuid)?.map(|f| f.records_done).unwrap_or(0)) };
    let started = Instant::now();
    let mut at_kills = Vec::new();
    for _ in 0..kills {
        let before = at_kills.last().copied().unwrap_or(0);
        while records_done(env)? <= before {
            anyhow::ensure!(started.elapsed() < Duration::from_secs(1800), "no progress after a restart");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let wait = rand::thread_rng().gen_range(0.0..clean_secs / kills as f64);
        tokio::time::sleep(Duration::from_secs_f64(wait)).await;
        let job = env.get_job(&job_id).await?;
        anyhow::ensure!(job["status"] == "running", "the ingest ended before kill {} of {kills}: {}", at_kills.len() + 1, job["status"]);
        env.kill_worker(0);
        at_kills.push(records_done(env)?);
        env.forget_worker(0);
        env.spawn_worker()?;
    }
    let job = env.wait_for(&job_id, Duration::from_secs(3600), |s| matches!(s, "succeeded" | "failed" | "cancelled")).await?;
    anyhow::ensure!(job["status"] == "succeeded", "{job}");
    let (clean, killed) = (digest(env, clean_id)?, digest(env, &id)?);
    println!(
        "\n{kills} SIGKILLs at checkpoints {at_kills:?}; {} attempts; {:.1} s in all; stored {} rows, checksum {}: {}",
        job["attempts"],
        started.elapsed().as_secs_f64(),
        killed.rows,
        killed.checksum.as_deref().unwrap_or("-"),
        if clean == killed { "equal to the clean run's" } else { "DIFFERENT from the clean run's" }
    );
    anyhow::ensure!(clean == killed, "clean run {clean:?}, killed run {killed:?}");
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (mut kills, mut plain) = (0usize, Vec::new());
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--kills" => kills = args.next().ok_or_else(|| anyhow::anyhow!("--kills needs a number"))?.parse()?,
            _ => plain.push(arg),
        }
    }
    let path = plain.first().map(|p| p.to_string()).ok_or_else(|| anyhow::anyhow!("usage: crunch-bench-genes FILE [WRITERS] [--kills N]"))?;
    let exe = std::env::current_exe()?;
    if std::env::var_os("CRUNCH_BIN_DIR").is_none() {
        std::env::set_var("CRUNCH_BIN_DIR", exe.parent().ok_or_else(|| anyhow::anyhow!("no bin dir"))?);
    }
    let writers: usize = plain.get(1).map(|w| w.parse()).transpose()?.unwrap_or(2);
    let size = std::fs::metadata(&path)?.len();
    let worker_env = vec![("RUST_LOG".into(), std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into())), ("CRUNCH_GENES_WRITERS".into(), writers.to_string())];
    // Each kill redelivers the job: the dead-letter limit must not end it.
    let delivery_limit = kills as i64 + 5;
    let mut env = TestEnv::start_with(Options { worker_env, genes_max_upload_bytes: 4 << 30, delivery_limit, ..Default::default() }).await?;

    let batches = encode(&path)?;
    let records: usize = batches.iter().map(CopyRows::rows).sum();
    println!("| raw COPY (FORMAT binary), primary key only | connections | seconds | records/s | MB/s of the file |\n|---|---:|---:|---:|---:|");
    let mut best = f64::MAX;
    for conns in [1, writers] {
        let secs = ceiling(&env.database_url, &batches, conns)?;
        best = best.min(secs);
        println!("| {records} records | {conns} | {secs:.1} | {:.0} | {:.0} |", records as f64 / secs, size as f64 / secs / 1e6);
    }
    drop(batches);
    println!();
    let worker_pid = env.workers[0].id();
    // From the state each ceiling run starts from.
    diesel::sql_query("CHECKPOINT").execute(&mut env.db()?)?;
    let (id, job_id, uploaded) = upload(&env, &path).await?;
    let started = Instant::now() - uploaded;
    let mut peak = 0;
    let job = loop {
        peak = peak.max(peak_rss_kib(worker_pid).unwrap_or(0));
        let job = env.get_job(&job_id).await?;
        if matches!(job["status"].as_str(), Some("succeeded" | "failed" | "cancelled")) {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let total = started.elapsed();
    peak = peak.max(peak_rss_kib(worker_pid).unwrap_or(0));
    anyhow::ensure!(job["status"] == "succeeded", "{job}");
    let r = &job["result"];
    println!("| file | sequences | upload | parse + store | total | throughput | records/s | worker peak RSS | total / best ceiling |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {:.0} MiB | {} | {:.1} s | {:.1} s | {:.1} s | {:.0} MB/s | {:.0} | {} MiB | {:.2}x |",
        size as f64 / 1048576.0,
        r["stored"],
        uploaded.as_secs_f64(),
        (total - uploaded).as_secs_f64(),
        total.as_secs_f64(),
        size as f64 / total.as_secs_f64() / 1e6,
        records as f64 / total.as_secs_f64(),
        peak / 1024,
        total.as_secs_f64() / best
    );
    println!("\n| result download | bytes | seconds | MB/s |\n|---|---:|---:|---:|");
    for gzip in [false, true] {
        let (bytes, secs) = download(&env, &id, gzip).await?;
        println!("| {} | {bytes} | {secs:.1} | {:.0} |", if gzip { "gzip" } else { "plain" }, bytes as f64 / secs / 1e6);
    }
    if kills > 0 {
        killed_run(&mut env, &path, &id, (total - uploaded).as_secs_f64(), kills).await?;
    }
    Ok(())
}
