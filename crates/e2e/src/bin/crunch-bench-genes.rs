//! Gene files, upload to all stored: starts a gateway (in process) and one
//! release `crunch-worker`, creates a gene file, streams FILE to
//! `PUT /api/v1/gene-files/{id}/content`, waits until every sequence is in
//! PostgreSQL and prints the times and the worker's peak RSS. Used by
//! `scripts/bench-genes.sh`.
//!
//!   crunch-bench-genes FILE

use std::time::{Duration, Instant};

use crunch_e2e::{Options, TestEnv};
use serde_json::{json, Value};

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let path = std::env::args().nth(1).ok_or_else(|| anyhow::anyhow!("usage: crunch-bench-genes FILE"))?;
    let exe = std::env::current_exe()?;
    if std::env::var_os("CRUNCH_BIN_DIR").is_none() {
        std::env::set_var("CRUNCH_BIN_DIR", exe.parent().ok_or_else(|| anyhow::anyhow!("no bin dir"))?);
    }
    let size = std::fs::metadata(&path)?.len();
    let env = TestEnv::start_with(Options { worker_env: vec![("RUST_LOG".into(), "warn".into())], genes_max_upload_bytes: 4 << 30, ..Default::default() }).await?;
    let worker_pid = env.workers[0].id();
    let name = std::path::Path::new(&path).file_name().and_then(|n| n.to_str()).unwrap_or("bench.fasta").to_owned();
    let file: Value = env.http.post(env.url("/api/v1/gene-files")).bearer_auth(&env.key).json(&json!({"file_name": name})).send().await?.json().await?;
    let id = file["id"].as_str().unwrap_or_default().to_owned();
    let started = Instant::now();
    let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(tokio::fs::File::open(&path).await?, 1 << 20));
    let http = reqwest::Client::builder().timeout(Duration::from_secs(3600)).build()?;
    let r = http.put(env.url(&format!("/api/v1/gene-files/{id}/content"))).bearer_auth(&env.key).body(body).send().await?;
    anyhow::ensure!(r.status() == 202, "upload: {}", r.status());
    let uploaded = started.elapsed();
    let job_id = r.json::<Value>().await?["job"]["id"].as_str().unwrap_or_default().to_owned();
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
    println!(
        "| {:.0} MiB | {} | {:.1} s | {:.1} s | {:.1} s | {:.0} MB/s | {} MiB |",
        size as f64 / 1048576.0,
        r["stored"],
        uploaded.as_secs_f64(),
        (total - uploaded).as_secs_f64(),
        total.as_secs_f64(),
        size as f64 / total.as_secs_f64() / 1e6,
        peak / 1024
    );
    Ok(())
}
