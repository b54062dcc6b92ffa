//! `primes`: count or list the primes in `[from, to]`.
//!
//! Count mode sieves in pieces on the whole rayon pool. List mode sieves in
//! order on one thread and stores the primes as gap-encoded chunks of 65,536
//! (`prime_chunks`), so neither the worker nor the gateway ever holds the
//! whole list; a retried attempt first removes what the previous one wrote.

use std::time::Instant;

use crunch_compute::primes::{codec, count_parallel, for_each_prime};
use crunch_compute::Control;
use crunch_domain::{PrimesMode, PrimesParams};
use crunch_store::models::PrimeChunk;
use serde_json::json;

use super::{stopped, JobContext, Outcome};

/// How many of the first primes a list result shows inline.
const PREVIEW: usize = 10;

pub fn run(p: &PrimesParams, ctl: &Control, ctx: &JobContext) -> Outcome {
    match p.mode {
        PrimesMode::Count => count(p, ctl),
        PrimesMode::List => list(p, ctl, ctx),
    }
}

fn count(p: &PrimesParams, ctl: &Control) -> Outcome {
    let started = Instant::now();
    // Enough pieces for balance and steady progress, few enough that each
    // piece's set-up (sieving primes) stays negligible.
    let pieces = (rayon::current_num_threads() * 4).max(((p.to - p.from) / 2_000_000_000) as usize).min(4096);
    match count_parallel(p.from, p.to, pieces, ctl) {
        Ok(n) => Outcome::Succeeded(json!({
            "mode": "count",
            "from": p.from.to_string(),
            "to": p.to.to_string(),
            "count": n,
            "elapsed_ms": started.elapsed().as_millis() as u64,
        })),
        Err(stop) => stopped(stop, started.elapsed().as_millis() as u64, json!({})),
    }
}

fn list(p: &PrimesParams, ctl: &Control, ctx: &JobContext) -> Outcome {
    let started = Instant::now();
    let mut conn = match ctx.pool.get() {
        Ok(c) => c,
        Err(e) => return Outcome::Retry(format!("no database connection: {e}")),
    };
    if let Err(e) = crunch_store::primes::clear(&mut conn, ctx.job_id) {
        return Outcome::Retry(format!("clearing earlier chunks failed: {e}"));
    }
    let mut buf: Vec<u64> = Vec::with_capacity(codec::CHUNK_PRIMES);
    let mut stored: i64 = 0;
    let mut chunks = 0u64;
    let mut preview: Vec<u64> = Vec::with_capacity(PREVIEW);
    let mut failure: Option<String> = None;
    let width = (p.to - p.from) as f64 + 1.0;
    let mut flush = |buf: &mut Vec<u64>, conn: &mut crunch_store::PgConnection, failure: &mut Option<String>| {
        if buf.is_empty() || failure.is_some() {
            buf.clear();
            return;
        }
        let (first, data) = codec::encode(buf);
        let chunk = PrimeChunk {
            job_id: ctx.job_id,
            start_index: stored,
            first_prime: first as i64,
            count: buf.len() as i32,
            data,
        };
        match crunch_store::primes::insert(conn, &chunk) {
            Ok(()) => {
                stored += buf.len() as i64;
                chunks += 1;
            }
            Err(e) => *failure = Some(format!("storing a chunk failed: {e}")),
        }
        buf.clear();
    };
    let run = for_each_prime(p.from, p.to, ctl, |ps| {
        if failure.is_some() {
            return;
        }
        if preview.len() < PREVIEW {
            preview.extend(ps.iter().take(PREVIEW - preview.len()));
        }
        for &x in ps {
            buf.push(x);
            if buf.len() == codec::CHUNK_PRIMES {
                flush(&mut buf, &mut conn, &mut failure);
            }
        }
        if let Some(&last) = ps.last() {
            ctl.progress((last - p.from) as f64 / width);
        }
    });
    flush(&mut buf, &mut conn, &mut failure);
    if let Some(f) = failure {
        return Outcome::Retry(f);
    }
    let elapsed_ms = started.elapsed().as_millis() as u64;
    match run {
        Ok(()) => Outcome::Succeeded(json!({
            "mode": "list",
            "from": p.from.to_string(),
            "to": p.to.to_string(),
            "count": stored,
            "first_primes": preview,
            "chunks": chunks,
            "elapsed_ms": elapsed_ms,
        })),
        Err(stop) => stopped(stop, elapsed_ms, json!({"listed": stored})),
    }
}

/// Splits `[from, to]` into shard ranges when it is wider than `threshold`
/// (at most `max_shards`, each at least `threshold` wide but the last).
pub fn shard_plan(p: &PrimesParams, threshold: u64, max_shards: u64) -> Option<Vec<(u64, u64)>> {
    let width = p.to - p.from;
    if threshold == 0 || width < threshold {
        return None;
    }
    let span = width as u128 + 1;
    let n = span.div_ceil(threshold as u128).min(max_shards.max(2) as u128);
    let piece = span.div_ceil(n);
    let mut out = Vec::new();
    let mut a = p.from as u128;
    while a <= p.to as u128 {
        let b = (a + piece - 1).min(p.to as u128);
        out.push((a as u64, b as u64));
        a = b + 1;
    }
    Some(out)
}

/// The parent's result from its shards' results (all succeeded, in order).
pub fn aggregate(parent: &crunch_store::models::JobRow, shards: &[crunch_store::models::JobRow]) -> serde_json::Value {
    let results: Vec<&serde_json::Value> = shards.iter().filter_map(|s| s.result.as_ref()).collect();
    let counts: Vec<u64> = results.iter().map(|r| r["count"].as_u64().unwrap_or(0)).collect();
    let total: u64 = counts.iter().sum();
    let elapsed_ms = parent.started_at.map(|t| (chrono::Utc::now() - t).num_milliseconds().max(0)).unwrap_or(0);
    let mode = parent.params["mode"].clone();
    let mut out = json!({
        "mode": mode,
        "from": parent.params["from"],
        "to": parent.params["to"],
        "count": total,
        "shards": shards.len(),
        "elapsed_ms": elapsed_ms,
    });
    if mode == "list" {
        let preview: Vec<u64> = results
            .iter()
            .flat_map(|r| r["first_primes"].as_array().cloned().unwrap_or_default())
            .filter_map(|v| v.as_u64())
            .take(PREVIEW)
            .collect();
        out["first_primes"] = json!(preview);
        out["chunks"] = json!(results.iter().map(|r| r["chunks"].as_u64().unwrap_or(0)).sum::<u64>());
        out["shard_counts"] = json!(counts);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_plan_covers_the_range_exactly_once() {
        let p = PrimesParams { from: 10, to: 1_000_009, mode: PrimesMode::Count };
        let plan = shard_plan(&p, 100_000, 64).expect("sharded");
        assert_eq!(plan.len(), 10);
        assert_eq!(plan.first().map(|s| s.0), Some(10));
        assert_eq!(plan.last().map(|s| s.1), Some(1_000_009));
        for w in plan.windows(2) {
            assert_eq!(w[0].1 + 1, w[1].0);
        }
        assert!(shard_plan(&p, 10_000_000, 64).is_none());
        let full = PrimesParams { from: 0, to: u64::MAX, mode: PrimesMode::Count };
        let plan = shard_plan(&full, 1 << 40, 64).expect("sharded");
        assert_eq!(plan.len(), 64);
        assert_eq!(plan.last().map(|s| s.1), Some(u64::MAX));
    }
}
