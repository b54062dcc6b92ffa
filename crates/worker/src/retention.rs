//! The retention sweeper: every `CRUNCH_RETENTION_INTERVAL_MS`, finished
//! jobs older than their kind's retention are removed with what hangs off
//! them (events, prime chunks, shards, gene files), gene files never parsed
//! expire by age, and deleted gene files lose their sequences, then their
//! blobs, then their row. Everything goes in batches of
//! `CRUNCH_RETENTION_BATCH` rows, each its own short transaction that skips
//! rows others hold, with a pause between batches: the job path never waits
//! for a sweep. Every worker replica runs one; `SKIP LOCKED` keeps two from
//! taking the same rows. What was removed is counted in
//! `crunch_worker_retention_removed_total{what}`.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use clap::Args;
use crunch_domain::JobKind;
use crunch_store::retention::{Expired, PurgeStep};
use prometheus::{IntCounterVec, Opts};

use crate::process::db;
use crate::Shared;

#[derive(Debug, Clone, Args)]
pub struct RetentionArgs {
    /// How long a finished job and its results are kept, unless its kind has
    /// its own (`CRUNCH_RETENTION`): a number and a unit (`s`, `m`, `h`, `d`),
    /// or `forever`.
    #[arg(long, env = "CRUNCH_RETENTION_DEFAULT", default_value = "30d")]
    pub retention_default: Age,
    /// Retention per kind, overriding the default: `kind=age` pairs, comma
    /// separated (e.g. `check_url=90d,genes=7d,primes=forever`).
    #[arg(long, env = "CRUNCH_RETENTION", default_value = "")]
    pub retention: KindAges,
    /// Time between sweeps, in ms (0 = no sweeper on this worker).
    #[arg(long, env = "CRUNCH_RETENTION_INTERVAL_MS", default_value_t = 60_000)]
    pub retention_interval_ms: u64,
    /// Rows a sweep removes per transaction (jobs, or one file's sequences).
    #[arg(long, env = "CRUNCH_RETENTION_BATCH", default_value_t = 500)]
    pub retention_batch: i64,
    /// Pause between two batches, in ms.
    #[arg(long, env = "CRUNCH_RETENTION_PAUSE_MS", default_value_t = 20)]
    pub retention_pause_ms: u64,
    /// How long a monitor's check job is kept once ended (its outcome stays
    /// in the monitor's history, kept 8 days).
    #[arg(long, env = "CRUNCH_RETENTION_MONITOR_JOBS", default_value = "1h", value_parser = parse_positive_age)]
    pub retention_monitor_jobs: Duration,
}

/// A positive [`Age`] (not `forever`).
fn parse_positive_age(s: &str) -> Result<Duration, String> {
    s.parse::<Age>()?.0.ok_or_else(|| format!("'{s}': give a duration"))
}

impl RetentionArgs {
    /// How long `kind`'s finished jobs are kept (`None`: forever).
    pub fn ttl(&self, kind: JobKind) -> Option<Duration> {
        self.retention.0.iter().find(|(k, _)| *k == kind).map_or(self.retention_default, |(_, a)| *a).0
    }
}

/// A retention: a duration, or forever (`None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Age(pub Option<Duration>);

impl FromStr for Age {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("forever") {
            return Ok(Age(None));
        }
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (n, unit) = s.split_at(split);
        let n: u64 = n.parse().map_err(|_| format!("'{s}' is not an age like 30d, 12h, 90m, 45s or forever"))?;
        let secs = match unit {
            "s" => n,
            "m" => n.saturating_mul(60),
            "h" => n.saturating_mul(3600),
            "d" => n.saturating_mul(86_400),
            _ => return Err(format!("'{s}': the unit must be s, m, h or d")),
        };
        if secs == 0 {
            return Err(format!("'{s}': an age must be positive (or forever)"));
        }
        Ok(Age(Some(Duration::from_secs(secs))))
    }
}

/// `kind=age` pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KindAges(pub Vec<(JobKind, Age)>);

impl FromStr for KindAges {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (kind, age) = pair.split_once('=').ok_or_else(|| format!("'{pair}' is not kind=age"))?;
            let kind: JobKind = kind.trim().parse().map_err(|_| format!("'{}' is not a job kind", kind.trim()))?;
            out.push((kind, age.parse()?));
        }
        Ok(KindAges(out))
    }
}

pub async fn run(shared: Arc<Shared>) {
    let cfg = shared.cfg.retention.clone();
    if cfg.retention_interval_ms == 0 {
        return;
    }
    let removed = IntCounterVec::new(
        Opts::new(
            "retention_removed_total",
            "What the retention sweeper removed: jobs, prime_chunks, gene_files, sequences, blobs, blob_bytes, monitor_jobs, monitor_checks",
        ),
        &["what"],
    )
    .expect("a valid metric");
    if let Err(e) = shared.metrics.registry.register(Box::new(removed.clone())) {
        tracing::warn!(error = %e, "registering the retention metric failed");
    }
    let every = Duration::from_millis(cfg.retention_interval_ms);
    loop {
        tokio::time::sleep(every).await;
        if shared.shutting_down() {
            return;
        }
        sweep(&shared, &cfg, &removed).await;
    }
}

/// The moment `age` before `now` (none past the calendar's start).
fn older_than(now: chrono::DateTime<Utc>, age: Duration) -> Option<chrono::DateTime<Utc>> {
    now.checked_sub_signed(chrono::Duration::from_std(age).ok()?)
}

/// One sweep: expired jobs of every kind, expired unparsed gene files,
/// monitors' ended check jobs and old history, then the deleted gene files'
/// rows and blobs.
async fn sweep(shared: &Shared, cfg: &RetentionArgs, removed: &IntCounterVec) {
    let batch = cfg.retention_batch.max(1);
    let pause = Duration::from_millis(cfg.retention_pause_ms);
    let count = |what: &str, n: usize| removed.with_label_values(&[what]).inc_by(n as u64);
    let now = Utc::now();
    for &kind in JobKind::ALL {
        let Some(before) = cfg.ttl(kind).and_then(|ttl| older_than(now, ttl)) else { continue };
        loop {
            let Some(Expired { jobs, prime_chunks, gene_files }) = db(shared, "expire jobs", move |c| crunch_store::retention::expire_jobs(c, kind, before, batch)).await else { return };
            count("jobs", jobs);
            count("prime_chunks", prime_chunks);
            if jobs > 0 {
                tracing::info!(kind = kind.as_str(), jobs, prime_chunks, gene_files, "expired finished jobs");
            }
            if (jobs as i64) < batch || shared.shutting_down() {
                break;
            }
            tokio::time::sleep(pause).await;
        }
    }
    if let Some(before) = cfg.ttl(JobKind::Genes).and_then(|ttl| older_than(now, ttl)) {
        if in_batches(shared, "expire unparsed gene files", batch, pause, move |c| crunch_store::retention::expire_unparsed_gene_files(c, before, batch)).await.is_none() {
            return;
        }
    }
    // Monitors: their check jobs once ended (the outcome is in the history),
    // and history past the 7 days the figures cover.
    let jobs_before = older_than(now, cfg.retention_monitor_jobs).unwrap_or(now);
    let Some(n) = in_batches(shared, "expire monitor jobs", batch, pause, move |c| crunch_store::retention::expire_monitor_jobs(c, jobs_before, batch)).await else { return };
    count("monitor_jobs", n);
    let history_before = now - chrono::Duration::days(8);
    let Some(n) = in_batches(shared, "expire monitor checks", batch, pause, move |c| crunch_store::monitors::expire_checks(c, history_before, batch)).await else { return };
    count("monitor_checks", n);
    while !shared.shutting_down() {
        let Some(step) = db(shared, "purge gene files", move |c| crunch_store::retention::purge_gene_file(c, batch)).await else { return };
        match step {
            PurgeStep::Idle => return,
            PurgeStep::Sequences(n) => count("sequences", n),
            PurgeStep::Blobs { file_id, keys } => {
                for key in &keys {
                    let size = shared.blobs.size(key).await.ok().flatten();
                    if let Err(e) = shared.blobs.delete(key).await {
                        // Kept for the next sweep: the row stays until its blobs are gone.
                        tracing::warn!(error = %e, %file_id, key, "deleting a gene file's blob failed");
                        return;
                    }
                    if let Some(bytes) = size {
                        count("blobs", 1);
                        count("blob_bytes", bytes as usize);
                    }
                }
                if db(shared, "forget a gene file", move |c| crunch_store::retention::forget_gene_file(c, file_id)).await == Some(true) {
                    count("gene_files", 1);
                    tracing::info!(%file_id, "removed a deleted gene file");
                }
            }
        }
        tokio::time::sleep(pause).await;
    }
}

/// Runs `step` (one batch; the rows it removed) until a batch comes back
/// short of `batch`, pausing between batches; the rows removed in all, or
/// `None` when the database gave up or the worker is stopping.
async fn in_batches<F>(shared: &Shared, what: &str, batch: i64, pause: Duration, step: F) -> Option<usize>
where
    F: Fn(&mut crunch_store::PgConnection) -> Result<usize, crunch_store::StoreError> + Send + Sync + Clone + 'static,
{
    let mut total = 0;
    loop {
        let n = db(shared, what, step.clone()).await?;
        total += n;
        if (n as i64) < batch {
            return Some(total);
        }
        if shared.shutting_down() {
            return None;
        }
        tokio::time::sleep(pause).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_per_kind_overrides_parse() {
        assert_eq!("30d".parse::<Age>(), Ok(Age(Some(Duration::from_secs(30 * 86_400)))));
        assert_eq!("90m".parse::<Age>(), Ok(Age(Some(Duration::from_secs(5400)))));
        assert_eq!("Forever".parse::<Age>(), Ok(Age(None)));
        for bad in ["", "0s", "5", "3w", "-1d", "d"] {
            assert!(bad.parse::<Age>().is_err(), "{bad}");
        }
        let ages: KindAges = "check_url=90d, primes=forever,".parse().expect("valid");
        assert_eq!(ages.0, vec![(JobKind::CheckUrl, Age(Some(Duration::from_secs(90 * 86_400)))), (JobKind::Primes, Age(None))]);
        assert!("nope=1d".parse::<KindAges>().is_err());
        assert!("genes".parse::<KindAges>().is_err());
        let args = RetentionArgs {
            retention_default: "30d".parse().expect("age"),
            retention: ages,
            retention_interval_ms: 1,
            retention_batch: 1,
            retention_pause_ms: 0,
            retention_monitor_jobs: Duration::from_secs(3600),
        };
        assert_eq!(args.ttl(JobKind::Primes), None);
        assert_eq!(args.ttl(JobKind::Factorize), Some(Duration::from_secs(30 * 86_400)));
    }
}
