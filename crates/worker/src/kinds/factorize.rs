//! `factorize`: `{"n": "<decimal>"}` -> sorted primes with exponents
//! ([`FactorizeResult`]).

use std::time::Instant;

use crunch_compute::factor::{factorize, Factorization};
use crunch_compute::Control;
use crunch_domain::{FactorizeParams, FactorizePartial, FactorizeResult, PrimeFactor};

use super::{JobContext, Kernel, Kind, Outcome};

fn factors(f: &Factorization) -> Vec<PrimeFactor> {
    f.factors.iter().map(|pf| PrimeFactor { p: pf.p.to_str_radix(10), e: pf.e, method: pf.method.as_str().to_owned() }).collect()
}

impl Kind for FactorizeParams {
    const KERNEL: Kernel<Self> = Kernel::Cpu(run);
}

fn run(params: &FactorizeParams, ctl: &Control, _: &JobContext) -> Outcome {
    let started = Instant::now();
    let f = factorize(&params.n(), ctl);
    let elapsed_ms = started.elapsed().as_millis() as u64;
    match f.stopped {
        None => super::succeeded(FactorizeResult { factors: factors(&f), method: f.method().as_str().to_owned(), elapsed_ms }),
        Some(stop) => super::stopped(
            stop,
            elapsed_ms,
            serde_json::to_value(FactorizePartial { factors: factors(&f), unfactored: f.unfactored.iter().map(|c| c.to_str_radix(10)).collect(), elapsed_ms }).expect("a result is plain JSON"),
        ),
    }
}
