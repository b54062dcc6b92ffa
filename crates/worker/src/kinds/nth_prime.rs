//! `nth_prime`: the n-th prime by pi(x) and a sieve of the last gap
//! (`crunch_compute::pi::nth_prime`), on the whole rayon pool.

use std::time::Instant;

use crunch_compute::{pi, Control};
use crunch_domain::{NthPrimeParams, NthPrimeResult};
use serde_json::json;

use super::{stopped, succeeded, JobContext, Kernel, Kind, Outcome};

impl Kind for NthPrimeParams {
    const KERNEL: Kernel<Self> = Kernel::Cpu(run);
}

fn run(p: &NthPrimeParams, ctl: &Control, _ctx: &JobContext) -> Outcome {
    let started = Instant::now();
    match pi::nth_prime(p.n(), ctl) {
        Ok(prime) => succeeded(NthPrimeResult { n: p.n().to_string(), prime: prime.to_string(), elapsed_ms: started.elapsed().as_millis() as u64 }),
        Err(stop) => stopped(stop, started.elapsed().as_millis() as u64, json!({})),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_domain_and_the_kernel_agree_on_the_largest_n() {
        // The domain refuses n above its bound; the kernel asserts its own.
        assert_eq!(crunch_domain::NTH_PRIME_MAX, crunch_compute::pi::PI_MAX);
    }
}
