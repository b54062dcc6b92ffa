//! Integer factorization.
//!
//! Strategy per number: numbers that fit 64 bits take the [`small`] path
//! (trial division, deterministic Miller-Rabin, Pollard-Brent; microseconds).
//! Larger numbers take the [`big`] path: trial division by the primes below
//! 2^16, a BPSW primality test (plus Miller-Rabin to random bases), perfect-power
//! detection, then the splitters in [`big::split`] (ECM on multi-precision
//! integers by levels above 180 bits, [`ecm_mp`]; Pollard-Brent and our sieve
//! up to 180 bits, [`siqs`]; rusqsieve up to 250 bits) until every cofactor is
//! prime or the [`Control`] stops the run.

pub mod big;
pub mod ecm;
pub mod ecm_mp;
pub mod mont;
pub mod mpn;
#[cfg(target_arch = "x86_64")]
pub mod mpv;
pub mod rho;
pub mod siqs;
pub mod small;

use num_bigint::BigUint;

use crate::control::{Control, Stop};

/// How a prime factor was isolated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Method {
    TrialDivision,
    /// The cofactor left over was proven prime.
    PrimalityProof,
    PerfectPower,
    PollardBrent,
    Ecm,
    /// Pollard-Brent or ECM inside the SIQS engine's pre-sieve stage (it
    /// split the number before sieving).
    RhoEcm,
    /// The self-initialising quadratic sieve (rusqsieve).
    Siqs,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::TrialDivision => "trial_division",
            Method::PrimalityProof => "primality_test",
            Method::PerfectPower => "perfect_power",
            Method::PollardBrent => "pollard_brent",
            Method::Ecm => "ecm",
            Method::RhoEcm => "rho_ecm",
            Method::Siqs => "siqs",
        }
    }
}

/// One prime factor with its exponent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrimeFactor {
    pub p: BigUint,
    pub e: u32,
    pub method: Method,
}

/// The outcome of a run: the prime factors found (sorted), the composite
/// cofactors not yet split (empty when complete) and why it stopped early.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Factorization {
    pub factors: Vec<PrimeFactor>,
    pub unfactored: Vec<BigUint>,
    pub stopped: Option<Stop>,
}

impl Factorization {
    pub fn is_complete(&self) -> bool {
        self.unfactored.is_empty() && self.stopped.is_none()
    }

    /// The most advanced method that was needed (reported as the job's method).
    pub fn method(&self) -> Method {
        self.factors.iter().map(|f| f.method).max().unwrap_or(Method::TrialDivision)
    }

    fn from_primes(mut primes: Vec<(BigUint, Method)>) -> Self {
        primes.sort();
        let mut factors: Vec<PrimeFactor> = Vec::new();
        for (p, method) in primes {
            match factors.last_mut() {
                Some(last) if last.p == p => {
                    last.e += 1;
                    last.method = last.method.max(method);
                }
                _ => factors.push(PrimeFactor { p, e: 1, method }),
            }
        }
        Self { factors, unfactored: Vec::new(), stopped: None }
    }
}

/// Factors `n` (`n >= 1`; 1 has no prime factors), checking `ctl` at every
/// checkpoint.
pub fn factorize(n: &BigUint, ctl: &Control) -> Factorization {
    big::factorize(n, ctl)
}

/// Factors a 64-bit integer completely: sorted `(prime, exponent)` pairs.
pub fn factorize_u64(n: u64) -> Vec<(u64, u32)> {
    let mut raw = Vec::new();
    small::factor_u64(n, &mut raw);
    raw.sort_unstable();
    let mut out: Vec<(u64, u32)> = Vec::new();
    for (p, _) in raw {
        match out.last_mut() {
            Some(last) if last.0 == p => last.1 += 1,
            _ => out.push((p, 1)),
        }
    }
    out
}
