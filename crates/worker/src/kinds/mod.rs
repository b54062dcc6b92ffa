//! One module per job kind: each turns a parsed spec into a result. The CPU
//! kinds (factorize, primes) run on rayon through [`run`]; the I/O kinds
//! (check_url, scrape_hotels, genes) are async and are called by
//! `process.rs` directly.

pub mod check_url;
pub mod factorize;
pub mod genes;
pub mod primes;
pub mod scrape_hotels;

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

/// Runs the kernel of `spec` (on the calling rayon thread).
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
