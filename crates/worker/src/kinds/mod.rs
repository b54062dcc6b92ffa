//! One module per job kind: each turns a parsed spec into a result.
//! [`start`] starts any kind: the CPU kinds (factorize, primes) on rayon
//! through [`run`], the I/O kinds (check_url, scrape_hotels, genes) as tokio
//! tasks.

pub mod check_url;
pub mod factorize;
pub mod genes;
pub mod primes;
pub mod scrape_hotels;

use std::sync::Arc;

use crunch_compute::{Control, Stop};
use crunch_domain::{JobError, JobSpec};
use uuid::Uuid;

/// What a kernel may need besides its parameters.
pub struct JobContext {
    pub job_id: Uuid,
    pub pool: crunch_store::PgPool,
}

/// What a kernel run produced.
pub enum Outcome {
    Succeeded(serde_json::Value),
    /// Failed with `{code, message, details?}`.
    Failed(JobError),
    /// Stopped because the job was cancelled: nothing to record.
    Cancelled,
    /// A transient failure (e.g. the database went away while storing
    /// output): give the message back and try again later.
    Retry(String),
}

/// A kernel under way: its outcome (`None` if it panicked) and, for the
/// kinds that may wait on a socket, the handle that stops them at once.
pub struct Running {
    pub outcome: std::pin::Pin<Box<dyn std::future::Future<Output = Option<Outcome>> + Send>>,
    pub abort: Option<tokio::task::AbortHandle>,
}

/// Starts the kernel of `spec`: the CPU kinds on rayon (answering through a
/// oneshot), the I/O kinds on tokio. The one place that knows which kind
/// runs where and with what.
pub fn start(spec: JobSpec, ctl: Control, shared: &crate::Shared, job_id: Uuid) -> Running {
    let io = |handle: tokio::task::JoinHandle<Outcome>, abortable: bool| Running {
        abort: abortable.then(|| handle.abort_handle()),
        outcome: Box::pin(async move { handle.await.ok() }),
    };
    match spec {
        JobSpec::CheckUrl(p) => io(tokio::spawn(check_url::run(p, ctl, Arc::clone(&shared.io))), true),
        JobSpec::ScrapeHotels(p) => {
            let run = scrape_hotels::run(p, ctl, Arc::clone(&shared.scrape_io), Arc::clone(&shared.scrape), shared.pool.clone());
            io(tokio::spawn(run), true)
        }
        // Not aborted on cancel: the parse stops at its next batch (the
        // control's cancel flag) so that the writer ends cleanly.
        JobSpec::Genes(p) => io(tokio::spawn(genes::run(p, ctl, Arc::clone(&shared.genes), shared.blobs.clone(), shared.pool.clone())), false),
        spec @ (JobSpec::Factorize(_) | JobSpec::Primes(_)) => {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let span = tracing::Span::current();
            let ctx = JobContext { job_id, pool: shared.pool.clone() };
            rayon::spawn(move || {
                let _g = span.enter();
                let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&spec, &ctl, &ctx)));
                let _ = tx.send(out);
            });
            Running { outcome: Box::pin(async move { rx.await.ok().and_then(Result::ok) }), abort: None }
        }
    }
}

/// Runs the kernel of a CPU kind on the calling rayon thread (the quick
/// path calls it for whole batches).
pub fn run(spec: &JobSpec, ctl: &Control, ctx: &JobContext) -> Outcome {
    match spec {
        JobSpec::Factorize(p) => factorize::run(p, ctl),
        JobSpec::Primes(p) => primes::run(p, ctl, ctx),
        JobSpec::CheckUrl(_) | JobSpec::ScrapeHotels(_) | JobSpec::Genes(_) => {
            Outcome::Failed(JobError::new("internal_error", "this kind does not run on rayon"))
        }
    }
}

/// The outcome of a kernel stopped by its control.
pub fn stopped(stop: Stop, elapsed_ms: u64, details: serde_json::Value) -> Outcome {
    match stop {
        Stop::Cancelled => Outcome::Cancelled,
        Stop::TimeBudgetExceeded => Outcome::Failed(
            JobError::new("time_budget_exceeded", format!("the time budget ran out after {elapsed_ms} ms; what was found is in details")).with_details(details),
        ),
    }
}
