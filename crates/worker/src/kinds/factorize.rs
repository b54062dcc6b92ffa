//! `factorize`: `{"n": "<decimal>"}` -> sorted primes with exponents.

use std::time::Instant;

use crunch_compute::factor::{factorize, Factorization};
use crunch_compute::Control;
use crunch_domain::FactorizeParams;
use serde_json::json;

use super::Outcome;

fn factors_json(f: &Factorization) -> serde_json::Value {
    f.factors
        .iter()
        .map(|pf| json!({"p": pf.p.to_str_radix(10), "e": pf.e, "method": pf.method.as_str()}))
        .collect()
}

pub fn run(params: &FactorizeParams, ctl: &Control) -> Outcome {
    let started = Instant::now();
    let f = factorize(&params.n, ctl);
    let elapsed_ms = started.elapsed().as_millis() as u64;
    match f.stopped {
        None => Outcome::Succeeded(json!({
            "factors": factors_json(&f),
            "method": f.method().as_str(),
            "elapsed_ms": elapsed_ms,
        })),
        Some(stop) => super::stopped(
            stop,
            elapsed_ms,
            json!({
                "factors": factors_json(&f),
                "unfactored": f.unfactored.iter().map(|c| c.to_str_radix(10)).collect::<Vec<_>>(),
                "elapsed_ms": elapsed_ms,
            }),
        ),
    }
}
