//! One module per job kind: each turns a parsed spec into a result on rayon.

pub mod factorize;

use crunch_compute::Control;
use crunch_domain::JobSpec;

/// What a kernel run produced.
pub enum Outcome {
    Succeeded(serde_json::Value),
    /// Failed with `{code, message, details?}`.
    Failed(serde_json::Value),
    /// Stopped because the job was cancelled: nothing to record.
    Cancelled,
}

/// Runs the kernel of `spec` (on the calling rayon thread).
pub fn run(spec: &JobSpec, ctl: &Control) -> Outcome {
    match spec {
        JobSpec::Factorize(p) => factorize::run(p, ctl),
    }
}
