//! One file per job kind: each implements [`Kind`] for its parameters
//! (where its kernel runs, its time budget and, for a kind that splits, its
//! shards and how their results add up). `kinds!` below is the worker's one
//! list of kinds: it writes the dispatch ([`start`], [`budget`], [`split`],
//! [`aggregate`], [`inline`]) from it.

pub mod check_url;
pub mod factorize;
pub mod genes;
pub mod nth_prime;
pub mod primes;
pub mod scrape_hotels;

use std::time::Duration;

use crunch_compute::{Control, Stop};
use crunch_domain::{CheckUrlParams, FactorizeParams, GenesParams, JobError, JobKind, JobSpec, NthPrimeParams, PrimesParams, ScrapeHotelsParams};
use crunch_store::models::JobRow;
use futures::future::BoxFuture;
use uuid::Uuid;

use crate::{Config, ShardArgs, Shared};

/// What a CPU kernel may need besides its parameters.
pub struct JobContext {
    pub job_id: Uuid,
    pub pool: crunch_store::PgPool,
}

/// What a kernel run produced.
pub enum Outcome {
    /// The kind's typed result, as JSON.
    Succeeded(serde_json::Value),
    /// Failed with `{code, message, details?}`.
    Failed(JobError),
    /// Stopped because the job was cancelled: nothing to record.
    Cancelled,
    /// A transient failure (e.g. the database went away while storing
    /// output): give the message back and try again later.
    Retry(String),
}

/// Where and how a kind's kernel runs.
pub enum Kernel<P> {
    /// Computes on a rayon thread: alone, or in a batch of quick jobs.
    Cpu(fn(&P, &Control, &JobContext) -> Outcome),
    /// Waits on I/O as a tokio task. `abortable`: a cancel stops the task at
    /// once (it may be waiting on a socket); otherwise the kernel stops at its
    /// next look at the control.
    Io { run: fn(P, Control, &Shared) -> BoxFuture<'static, Outcome>, abortable: bool },
}

/// A job kind as the worker runs it, implemented by the kind's parameters.
pub trait Kind: Sized + Send + Sync + 'static {
    const KERNEL: Kernel<Self>;

    /// How long one run may take before it fails with `time_budget_exceeded`.
    fn budget(&self, cfg: &Config) -> Duration {
        Duration::from_secs(cfg.time_budget_secs)
    }

    /// The shards that run instead of this job when it is too wide for one
    /// run (any worker takes them; [`Kind::aggregate`] adds their results up).
    fn split(&self, _cfg: &ShardArgs) -> Option<Vec<Self>> {
        None
    }

    /// A split job's result from its shards' results (all succeeded, in order).
    fn aggregate(_parent: &JobRow, shards: &[JobRow]) -> serde_json::Value {
        serde_json::json!({"shards": shards.len(), "results": shards.iter().map(|s| s.result.clone()).collect::<Vec<_>>()})
    }
}

/// A kernel under way: its outcome (`None` if it panicked) and, for the
/// kinds that may wait on a socket, the handle that stops them at once.
pub struct Running {
    pub outcome: std::pin::Pin<Box<dyn std::future::Future<Output = Option<Outcome>> + Send>>,
    pub abort: Option<tokio::task::AbortHandle>,
}

/// A CPU kernel bound to its parameters, run on the calling rayon thread.
pub type Inline = Box<dyn Fn(&Control, &JobContext) -> Outcome + Send + Sync>;

fn start_kind<K: Kind>(params: K, ctl: Control, shared: &Shared, job_id: Uuid) -> Running {
    match K::KERNEL {
        Kernel::Cpu(run) => {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let span = tracing::Span::current();
            let ctx = JobContext { job_id, pool: shared.pool.clone() };
            let job = move || {
                let _g = span.enter();
                let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&params, &ctl, &ctx)));
                let _ = tx.send(out);
            };
            // Each job on its own pool of kernel threads: on a shared pool a
            // thread waiting inside one job's parallel loop takes the next
            // job from the queue and runs it to the end before returning, so
            // a short job could wait for a long one. Concurrent jobs share
            // the cores through the OS instead. The pool's threads end with
            // the job.
            match rayon::ThreadPoolBuilder::new().num_threads(shared.cfg.threads).thread_name(|i| format!("kernel-{i}")).build() {
                Ok(pool) => pool.spawn(job),
                Err(e) => {
                    tracing::warn!(error = %e, "no thread pool for the job: it runs on the shared one");
                    rayon::spawn(job);
                }
            }
            Running { outcome: Box::pin(async move { rx.await.ok().and_then(Result::ok) }), abort: None }
        }
        Kernel::Io { run, abortable } => {
            let handle = tokio::spawn(run(params, ctl, shared));
            Running { abort: abortable.then(|| handle.abort_handle()), outcome: Box::pin(async move { handle.await.ok() }) }
        }
    }
}

macro_rules! kinds {
    ($($variant:ident($params:ty),)+) => {
        /// Starts the kernel of `spec` where its kind runs.
        pub fn start(spec: JobSpec, ctl: Control, shared: &Shared, job_id: Uuid) -> Running {
            match spec {
                $(JobSpec::$variant(p) => start_kind(p, ctl, shared, job_id),)+
            }
        }

        /// The time budget of one run of `spec` ([`Kind::budget`]).
        pub fn budget(spec: &JobSpec, cfg: &Config) -> Duration {
            match spec {
                $(JobSpec::$variant(p) => p.budget(cfg),)+
            }
        }

        /// The shards of a job too wide for one run ([`Kind::split`]).
        pub fn split(spec: &JobSpec, cfg: &ShardArgs) -> Option<Vec<JobSpec>> {
            match spec {
                $(JobSpec::$variant(p) => p.split(cfg).map(|shards| shards.into_iter().map(JobSpec::$variant).collect()),)+
            }
        }

        /// A split job's result from its shards' ([`Kind::aggregate`]).
        pub fn aggregate(parent: &JobRow, shards: &[JobRow]) -> serde_json::Value {
            match parent.kind {
                $(JobKind::$variant => <$params as Kind>::aggregate(parent, shards),)+
            }
        }

        /// The kernel of a CPU kind bound to its parameters (the quick path
        /// runs batches of them); the spec of any other kind comes back.
        pub fn inline(spec: JobSpec) -> Result<Inline, JobSpec> {
            match spec {
                $(JobSpec::$variant(p) => match <$params as Kind>::KERNEL {
                    Kernel::Cpu(run) => Ok(Box::new(move |ctl: &Control, ctx: &JobContext| run(&p, ctl, ctx))),
                    Kernel::Io { .. } => Err(JobSpec::$variant(p)),
                },)+
            }
        }
    };
}

kinds! {
    Factorize(FactorizeParams),
    Primes(PrimesParams),
    NthPrime(NthPrimeParams),
    CheckUrl(CheckUrlParams),
    ScrapeHotels(ScrapeHotelsParams),
    Genes(GenesParams),
}

/// A kernel's typed result.
pub fn succeeded(result: impl serde::Serialize) -> Outcome {
    Outcome::Succeeded(serde_json::to_value(result).expect("a result is plain JSON"))
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
