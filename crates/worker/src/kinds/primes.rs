//! `primes`: count or list the primes in `[from, to]`.
//!
//! Count mode runs on the job's rayon pool: a sieve in pieces for narrow
//! ranges, pi(to) - pi(from - 1) by the combinatorial method for wide ones
//! (`crunch_compute::pi`). List mode sieves in
//! order on one thread and stores the primes as gap-encoded chunks of 65,536
//! (`prime_chunks`), so neither the worker nor the gateway ever holds the
//! whole list; a retried attempt first removes what the previous one wrote.

use std::time::Instant;

use crunch_compute::pi;
use crunch_compute::primes::{codec, for_each_prime};
use crunch_compute::Control;
use crunch_domain::{PrimesMode, PrimesParams, PrimesResult};
use crunch_store::models::{JobRow, PrimeChunk};
use serde_json::json;

use super::{stopped, succeeded, JobContext, Kernel, Kind, Outcome};
use crate::ShardArgs;

/// How many of the first primes a list result shows inline.
const PREVIEW: usize = 10;

impl Kind for PrimesParams {
    const KERNEL: Kernel<Self> = Kernel::Cpu(run);

    /// `[from, to]` in shard ranges when it is wider than its mode's
    /// threshold (at most `CRUNCH_PRIMES_MAX_SHARDS`, each at least the
    /// threshold wide but the last). A count that pi answers is never split:
    /// each shard would cost about as much as the whole.
    fn split(&self, cfg: &ShardArgs) -> Option<Vec<Self>> {
        if self.mode() == PrimesMode::Count && pi::prefers_pi(self.from(), self.to()) {
            return None;
        }
        let threshold = match self.mode() {
            PrimesMode::Count => cfg.primes_shard_width_count,
            PrimesMode::List => cfg.primes_shard_width_list,
        };
        let width = self.to() - self.from();
        if threshold == 0 || width < threshold {
            return None;
        }
        let span = width as u128 + 1;
        let n = span.div_ceil(threshold as u128).min(cfg.primes_max_shards.max(2) as u128);
        let piece = span.div_ceil(n);
        let mut out = Vec::new();
        let mut a = self.from() as u128;
        while a <= self.to() as u128 {
            let b = (a + piece - 1).min(self.to() as u128);
            out.push(self.shard(a as u64, b as u64));
            a = b + 1;
        }
        Some(out)
    }

    /// The counts add up; a list's preview is the first shards' first primes.
    fn aggregate(parent: &JobRow, shards: &[JobRow]) -> serde_json::Value {
        aggregate(parent, shards)
    }
}

fn run(p: &PrimesParams, ctl: &Control, ctx: &JobContext) -> Outcome {
    match p.mode() {
        PrimesMode::Count => count(p, ctl),
        PrimesMode::List => list(p, ctl, ctx),
    }
}

fn count(p: &PrimesParams, ctl: &Control) -> Outcome {
    let started = Instant::now();
    match pi::count(p.from(), p.to(), ctl) {
        Ok(n) => succeeded(PrimesResult { count: n, ..result(p, started) }),
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
    let width = (p.to() - p.from()) as f64 + 1.0;
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
    let run = for_each_prime(p.from(), p.to(), ctl, |ps| {
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
            ctl.progress((last - p.from()) as f64 / width);
        }
    });
    flush(&mut buf, &mut conn, &mut failure);
    if let Some(f) = failure {
        return Outcome::Retry(f);
    }
    let elapsed_ms = started.elapsed().as_millis() as u64;
    match run {
        Ok(()) => succeeded(PrimesResult { count: stored as u64, first_primes: Some(preview), chunks: Some(chunks), ..result(p, started) }),
        Err(stop) => stopped(stop, elapsed_ms, json!({"listed": stored})),
    }
}

/// A result of `p` with nothing found yet.
fn result(p: &PrimesParams, started: Instant) -> PrimesResult {
    PrimesResult {
        mode: p.mode(),
        from: p.from().to_string(),
        to: p.to().to_string(),
        count: 0,
        first_primes: None,
        chunks: None,
        shards: None,
        shard_counts: None,
        elapsed_ms: started.elapsed().as_millis() as u64,
    }
}

/// The parent's result from its shards' results (all succeeded, in order).
fn aggregate(parent: &JobRow, shards: &[JobRow]) -> serde_json::Value {
    let results: Vec<PrimesResult> = shards.iter().filter_map(|s| serde_json::from_value(s.result.clone()?).ok()).collect();
    let counts: Vec<u64> = results.iter().map(|r| r.count).collect();
    let elapsed_ms = parent.started_at.map(|t| (chrono::Utc::now() - t).num_milliseconds().max(0) as u64).unwrap_or(0);
    let mode: PrimesMode = serde_json::from_value(parent.params["mode"].clone()).unwrap_or(PrimesMode::Count);
    let text = |v: &serde_json::Value| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string());
    let list = mode == PrimesMode::List;
    let out = PrimesResult {
        mode,
        from: text(&parent.params["from"]),
        to: text(&parent.params["to"]),
        count: counts.iter().sum(),
        first_primes: list.then(|| results.iter().flat_map(|r| r.first_primes.iter().flatten().copied()).take(PREVIEW).collect()),
        chunks: list.then(|| results.iter().filter_map(|r| r.chunks).sum()),
        shards: Some(shards.len() as u64),
        shard_counts: list.then_some(counts),
        elapsed_ms,
    };
    serde_json::to_value(out).expect("a result is plain JSON")
}

#[cfg(test)]
mod tests {
    use super::*;

    use crunch_domain::Params;

    fn params(from: u64, to: u64) -> PrimesParams {
        params_in(from, to, "count")
    }

    fn params_in(from: u64, to: u64, mode: &str) -> PrimesParams {
        let limits = crunch_domain::Limits { primes_count_max_width: u64::MAX, primes_list_max_width: u64::MAX, ..Default::default() };
        PrimesParams::parse(&serde_json::json!({"from": from.to_string(), "to": to.to_string(), "mode": mode}), &limits).expect("valid")
    }

    fn plan(p: &PrimesParams, threshold: u64, max_shards: u64) -> Option<Vec<(u64, u64)>> {
        let cfg = crate::ShardArgs { primes_shard_width_count: threshold, primes_shard_width_list: threshold, primes_max_shards: max_shards };
        p.split(&cfg).map(|shards| shards.iter().map(|s| (s.from(), s.to())).collect())
    }

    #[test]
    fn shards_cover_the_range_exactly_once() {
        let p = params(10, 1_000_009);
        let shards = plan(&p, 100_000, 64).expect("sharded");
        assert_eq!(shards.len(), 10);
        assert_eq!(shards.first().map(|s| s.0), Some(10));
        assert_eq!(shards.last().map(|s| s.1), Some(1_000_009));
        for w in shards.windows(2) {
            assert_eq!(w[0].1 + 1, w[1].0);
        }
        assert!(plan(&p, 10_000_000, 64).is_none());
        let shards = plan(&params_in(0, u64::MAX, "list"), 1 << 40, 64).expect("sharded");
        assert_eq!(shards.len(), 64);
        assert_eq!(shards.last().map(|s| s.1), Some(u64::MAX));
        // pi answers a wide count faster than any shard of it would.
        assert!(plan(&params(0, u64::MAX), 1 << 40, 64).is_none());
        assert!(plan(&params(1 << 40, (1 << 40) + 100_000_000_000), 1 << 30, 64).is_none());
        assert!(plan(&params(1 << 60, (1 << 60) + 100_000_000_000), 1 << 30, 64).is_some());
    }
}
