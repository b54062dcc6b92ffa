//! Factorization of arbitrary-precision integers.

use std::sync::OnceLock;

use num_bigint::BigUint;
use num_prime::nt_funcs::is_prime;
use num_prime::PrimalityTestConfig;
use num_traits::{One, ToPrimitive, Zero};
use rand::Rng;

use super::ecm::{ecm, EcmParams};
use super::ecm_mp;
use super::mont::Mont128;
use super::rho::{brent, Rho};
use super::siqs;
use super::small::{self, primes_below, sprp_u128};
use super::{Factorization, Method};
use crate::control::{Control, Stop};

/// Above 64 bits, trial division covers the primes below this bound.
const BIG_TRIAL_LIMIT: u64 = 1 << 16;
/// Random Miller-Rabin rounds run after BPSW (belt and braces).
const EXTRA_MR_ROUNDS: usize = 5;

/// The primes below 2^16, in order.
pub(crate) fn big_trial_primes() -> &'static [u64] {
    static TABLE: OnceLock<Vec<u64>> = OnceLock::new();
    TABLE.get_or_init(|| primes_below(BIG_TRIAL_LIMIT))
}

/// `u64::MAX / p + 1` for each of [`big_trial_primes`] (for [`rem_small`]).
pub(crate) fn trial_magics() -> &'static [u64] {
    static TABLE: OnceLock<Vec<u64>> = OnceLock::new();
    TABLE.get_or_init(|| big_trial_primes().iter().map(|&p| u64::MAX / p + 1).collect())
}

/// `n mod p` for a prime `p < 2^16`, sixteen bits at a time, each step a
/// 32-bit remainder by multiplication (Lemire's fastmod with `magic`): no
/// division and no allocation, unlike `&n % p` on a BigUint.
pub(crate) fn rem_small(n: &BigUint, p: u32, magic: u64) -> u32 {
    n.iter_u32_digits().rev().fold(0u32, |r, d| {
        let r = small::fastmod((r << 16) | (d >> 16), magic, p);
        small::fastmod((r << 16) | (d & 0xffff), magic, p)
    })
}

/// Primality of an integer above 2^64: BPSW (strong base-2 probable-prime test
/// and strong Lucas test; no counterexample is known) followed by Miller-Rabin
/// to random bases.
pub fn is_prime_big(n: &BigUint) -> bool {
    if let Some(v) = n.to_u64() {
        return small::is_prime_u64(v);
    }
    if let Some(v) = n.to_u128() {
        if v & 1 == 0 || !sprp_u128(v, &[2]) {
            return false;
        }
    }
    if !is_prime(n, Some(PrimalityTestConfig::bpsw())).probably() {
        return false;
    }
    let mut rng = rand::thread_rng();
    let n_minus_1 = n - 1u32;
    let s = n_minus_1.trailing_zeros().unwrap_or(0);
    let d = &n_minus_1 >> s;
    (0..EXTRA_MR_ROUNDS).all(|_| {
        let a = BigUint::from(rng.gen_range(3u64..u64::MAX)) % n;
        if a < BigUint::from(2u32) {
            return true;
        }
        let mut x = a.modpow(&d, n);
        if x.is_one() || x == n_minus_1 {
            return true;
        }
        for _ in 1..s {
            x = (&x * &x) % n;
            if x == n_minus_1 {
                return true;
            }
        }
        false
    })
}

/// `Some((root, k))` with `root^k == n`, `k >= 2` and `k` as large as possible.
fn perfect_power(n: &BigUint) -> Option<(BigUint, u32)> {
    let bits = n.bits() as u32;
    // After trial division to 2^16, a root is at least 2^16: k <= bits / 16.
    let mut best = None;
    for k in primes_below((bits / 16 + 2) as u64) {
        let k = k as u32;
        let r = n.nth_root(k);
        if r.pow(k) == *n {
            best = Some((r, k));
        }
    }
    best
}

/// Cofactors up to this size go to the sieve once ECM has run to 2/9 of their
/// digits; larger ones stay with ECM, level after level.
pub const SIEVE_MAX_BITS: u64 = 250;

/// What the splitters already did to a cofactor (inherited by its parts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tried {
    /// ECM levels ([`ecm_mp::LEVELS`]) run to the end without a factor.
    pub ecm_levels: usize,
    /// Rounds of more curves at the last level, past the table.
    pub ecm_rounds: u64,
}

/// Splits the odd composite `n` (not a perfect power) into parts whose
/// product is `n`, with the method that found them.
///
/// - Above [`siqs::MAX_BITS`] (180), ECM on multi-precision words
///   ([`ecm_mp`]) first, level by level ([`ecm_levels`]): a level or two up
///   to [`SIEVE_MAX_BITS`], every level above it. (Not at 167-180 bits,
///   where p15 would be due: it costs a balanced semiprime 5% there, 581
///   against 553 ms, and our sieve is only on par with PARI/GP at 180 bits.)
/// - Up to [`siqs::MAX_BITS`] (180): a short Pollard-Brent run (factors below
///   about 2^22), then our own word-sized SIQS ([`siqs`]), which at 65-180
///   bits beats both ECM on Montgomery words (80 bits: 12.8 -> 1.7 ms) and
///   the general engine (100 bits: 12.5 -> about 4 ms, 160 bits: 305 -> 212
///   ms; docs/benchmarks.md).
/// - Up to [`SIEVE_MAX_BITS`]: the general SIQS engine (rusqsieve, sieving on
///   every kernel thread).
/// - Should a sieve give up (it never has in the cross-checks), ECM on words
///   and Pollard-Brent take over.
pub fn split(n: &BigUint, ctl: &Control, tried: &mut Tried) -> Result<(Vec<BigUint>, Method), Stop> {
    let two = |d: BigUint, m: Method| Ok((vec![n / &d, d], m));
    let bits = n.bits();
    if bits > siqs::MAX_BITS && bits <= ecm_mp::MAX_BITS {
        if let Some(d) = ecm_levels(n, ctl, tried)? {
            return two(d, Method::Ecm);
        }
    }
    if bits <= siqs::MAX_BITS {
        if let Some(v) = n.to_u128() {
            match brent(&Mont128::new(v), 1, Some(ctl), 1 << 11) {
                Rho::Found(d) => return two(BigUint::from(d), Method::PollardBrent),
                Rho::Stopped(s) => return Err(s),
                Rho::Failed => {}
            }
        }
        say_sieving(n, ctl);
        if let Some(d) = siqs::factor(n, ctl)? {
            return two(d, Method::Siqs);
        }
    }
    if let Some(v) = n.to_u128() {
        let m = Mont128::new(v);
        let mut sigma = 6;
        for b1 in [150u64, 500, 2_000, 10_000, 50_000, 250_000, 1_000_000] {
            let params = EcmParams { b1, b2: 50 * b1, curves: 40 };
            if let Some(d) = ecm(&m, params, sigma, Some(ctl))? {
                return two(BigUint::from(d), Method::Ecm);
            }
            sigma += params.curves as u64;
        }
        for c in 2u64.. {
            match brent(&m, c, Some(ctl), u64::MAX) {
                Rho::Found(d) => return two(BigUint::from(d), Method::PollardBrent),
                Rho::Failed => continue,
                Rho::Stopped(s) => return Err(s),
            }
        }
    }
    say_sieving(n, ctl);
    if let Some(found) = siqs(n, ctl)? {
        return Ok(found);
    }
    // Beyond the sieve's range after ECM (only when ECM cannot take the
    // number), or after the sieve gave up: Pollard-Brent until the time
    // budget stops it.
    for c in 1u64.. {
        if let Some(d) = brent_big(n, c, ctl)? {
            return two(d, Method::PollardBrent);
        }
    }
    unreachable!("the loop over c only ends by returning")
}

fn say_sieving(n: &BigUint, ctl: &Control) {
    if ctl.wants_stage() {
        ctl.stage(&format!("sieving (SIQS) a {}-digit cofactor", n.to_string().len()));
    }
}

/// ECM on `n` (181 to 1,024 bits) level by level from where `tried` says:
/// `Ok(None)` once the sieve should take over, which is when `n` has at most
/// [`SIEVE_MAX_BITS`] and the next level's factor size passes 3/10 of its
/// digits (a cofactor of 60 digits gets p15, one of 70 gets p15 and p20).
/// Larger numbers stay here: every level of the table, then more curves at
/// the last one, until a factor or the control stops the run.
fn ecm_levels(n: &BigUint, ctl: &Control, tried: &mut Tried) -> Result<Option<BigUint>, Stop> {
    let digits = n.to_string().len() as u32;
    let sieve_next = n.bits() <= SIEVE_MAX_BITS;
    loop {
        let i = tried.ecm_levels.min(ecm_mp::LEVELS.len() - 1);
        let level = ecm_mp::LEVELS[i];
        if sieve_next && (level.digits * 10 > digits * 3 || tried.ecm_levels >= ecm_mp::LEVELS.len()) {
            return Ok(None);
        }
        // Past the table: more curves at its last level, new ones each round.
        let first_k = 6 + ((i as u64) << 40) + tried.ecm_rounds * u64::from(level.curves);
        let note = |done: u32| {
            if ctl.wants_stage() {
                ctl.stage(&format!("ECM p{}: {done} of {} curves (B1 = {}) on a {digits}-digit cofactor", level.digits, level.curves, level.b1));
            }
        };
        note(0);
        match ecm_mp::run_level(n, &level, first_k, ctl, &note)? {
            ecm_mp::LevelOutcome::Found(d) => return Ok(Some(d)),
            ecm_mp::LevelOutcome::Exhausted if tried.ecm_levels + 1 < ecm_mp::LEVELS.len() => tried.ecm_levels += 1,
            ecm_mp::LevelOutcome::Exhausted => {
                tried.ecm_levels = ecm_mp::LEVELS.len();
                tried.ecm_rounds += 1;
            }
        }
    }
}

/// The SIQS engine on `n`: every prime factor it found (each checked again by
/// the caller) and whether the sieve ran; None when `n` is beyond its range.
/// Cancellation and the time budget reach it through its progress callback;
/// progress is relations found / needed while sieving.
fn siqs(n: &BigUint, ctl: &Control) -> Result<Option<(Vec<BigUint>, Method)>, Stop> {
    use rusqsieve::{FactorConfig, FactorError, Natural, Parallelism, ProgressAction, ProgressPhase, ProgressUnit};
    let Ok(input) = n.to_str_radix(10).parse::<Natural<16>>() else { return Ok(None) };
    let threads = rayon::current_num_threads().max(1);
    // Callbacks at least every 100 ms: cancel and the budget act within that.
    let mut config = FactorConfig::default().with_progress_interval(std::time::Duration::from_millis(100));
    // Half the crate's sieve width at 181-208 bits (its tiers: 90,112 and
    // 131,072), same factor-base bounds: 190 bits 2.70 -> 2.38 s, 200 bits
    // 5.46 -> 4.32 s, one thread (the L1 lesson of our own sieve). The
    // override is a hidden API of the pinned 0.5.0.
    let half_width = match n.bits() {
        181..=192 => Some((100_000, 45_056)),
        193..=208 => Some((120_000, 65_536)),
        _ => None,
    };
    if let Some((bound, width)) = half_width {
        config = config.with_tuning_overrides(None, None, None, None, Some(bound), Some(width), None, None, None, false);
    }
    if let Some(p) = Parallelism::threads(threads) {
        config = config.with_parallelism(p);
    }
    let mut sieved = false;
    let mut stop = None;
    let result = rusqsieve::factor_with_progress(input, config, |snap| {
        if matches!(snap.phase(), ProgressPhase::Sieving | ProgressPhase::LinearAlgebra) {
            sieved = true;
        }
        let amount = snap.amount();
        if snap.phase() == ProgressPhase::Sieving && amount.unit() == ProgressUnit::Relations {
            if let Some(f) = amount.fraction() {
                ctl.progress(f.min(0.99));
            }
        }
        match ctl.check() {
            Ok(()) => ProgressAction::Continue,
            Err(s) => {
                stop = Some(s);
                ProgressAction::Cancel
            }
        }
    });
    if let Some(s) = stop {
        return Err(s);
    }
    match result {
        Ok(factors) => {
            let parts: Vec<BigUint> = factors.expanded().filter_map(|p| BigUint::parse_bytes(p.to_string().as_bytes(), 10)).collect();
            let product = parts.iter().fold(BigUint::one(), |acc, p| acc * p);
            if parts.len() < 2 || product != *n {
                return Ok(None);
            }
            Ok(Some((parts, if sieved { Method::Siqs } else { Method::RhoEcm })))
        }
        Err(FactorError::Cancelled) => Err(ctl.check().err().unwrap_or(Stop::Cancelled)),
        Err(_) => Ok(None),
    }
}

/// Pollard-Brent on arbitrary precision (no Montgomery form).
fn brent_big(n: &BigUint, c: u64, ctl: &Control) -> Result<Option<BigUint>, Stop> {
    let c = BigUint::from(c);
    let f = |x: &BigUint| (x * x + &c) % n;
    let gcd = |a: &BigUint| num_integer::Integer::gcd(a, n);
    let diff = |a: &BigUint, b: &BigUint| if a > b { a - b } else { b - a };
    let mut y = BigUint::from(2u32);
    let mut q = BigUint::one();
    let mut g = BigUint::one();
    let mut ys = y.clone();
    let mut x = y.clone();
    let mut r: u64 = 1;
    while g.is_one() {
        x = y.clone();
        for _ in 0..r {
            y = f(&y);
        }
        let mut k = 0;
        while k < r && g.is_one() {
            ys = y.clone();
            let steps = 64.min(r - k);
            for _ in 0..steps {
                y = f(&y);
                q = (q * diff(&x, &y)) % n;
            }
            g = gcd(&q);
            k += steps;
            ctl.check()?;
        }
        r *= 2;
    }
    if g == *n {
        loop {
            ys = f(&ys);
            g = gcd(&diff(&x, &ys));
            if !g.is_one() {
                break;
            }
        }
    }
    Ok(if g == *n { None } else { Some(g) })
}

pub fn factorize(n: &BigUint, ctl: &Control) -> Factorization {
    let mut primes: Vec<(BigUint, Method)> = Vec::new();
    if n.is_zero() {
        return Factorization::default();
    }
    let push_small = |v: u64, primes: &mut Vec<(BigUint, Method)>| {
        let mut raw = Vec::new();
        small::factor_u64(v, &mut raw);
        primes.extend(raw.into_iter().map(|(p, m)| (BigUint::from(p), m)));
    };
    if let Some(v) = n.to_u64() {
        push_small(v, &mut primes);
        return Factorization::from_primes(primes);
    }
    let mut rest = n.clone();
    for (&p, &magic) in big_trial_primes().iter().zip(trial_magics()) {
        if rest.bits() <= 32 && p * p > rest.to_u64().unwrap_or(u64::MAX) {
            break;
        }
        while rem_small(&rest, p as u32, magic) == 0 {
            rest /= p;
            primes.push((BigUint::from(p), Method::TrialDivision));
        }
    }
    let total_bits = n.bits().max(1) as f64;
    // (cofactor, method to credit if it turns out prime, what was tried on it)
    let mut stack: Vec<(BigUint, Method, Tried)> = vec![(rest, Method::PrimalityProof, Tried::default())];
    let mut stopped = None;
    while let Some((m, credit, mut tried)) = stack.pop() {
        if m.is_one() {
            continue;
        }
        if let Some(v) = m.to_u64() {
            let mark = primes.len();
            push_small(v, &mut primes);
            if credit != Method::PrimalityProof {
                for f in &mut primes[mark..] {
                    f.1 = f.1.max(credit);
                }
            }
        } else if is_prime_big(&m) {
            primes.push((m, credit));
        } else if let Some((root, k)) = perfect_power(&m) {
            for _ in 0..k {
                stack.push((root.clone(), Method::PerfectPower, tried));
            }
        } else {
            match split(&m, ctl, &mut tried) {
                Ok((parts, method)) => {
                    for d in parts {
                        stack.push((d, method, tried));
                    }
                }
                Err(stop) => {
                    stopped = Some(stop);
                    stack.push((m, credit, tried));
                    break;
                }
            }
        }
        let left: f64 = stack.iter().map(|(c, _, _)| c.bits() as f64).sum();
        ctl.progress(1.0 - left / total_bits);
    }
    let mut out = Factorization::from_primes(primes);
    out.unfactored = stack.into_iter().map(|(c, _, _)| c).filter(|c| !c.is_one()).collect();
    out.unfactored.sort();
    out.stopped = stopped;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn remainders_by_the_trial_primes() {
        let n = BigUint::from_str("340282366920938463463374607431768211507123456789").expect("literal");
        for (&p, &magic) in big_trial_primes().iter().zip(trial_magics()).step_by(7) {
            assert_eq!(u64::from(rem_small(&n, p as u32, magic)), (&n % p).to_u64().unwrap_or(0), "mod {p}");
        }
    }

    #[test]
    fn mersenne_127_is_prime_and_2_128_plus_1_is_not() {
        let m127 = (BigUint::one() << 127u32) - 1u32;
        assert!(is_prime_big(&m127));
        let f7 = (BigUint::one() << 128u32) + 1u32; // Fermat F7, composite
        assert!(!is_prime_big(&f7));
    }

    #[test]
    fn factors_a_128_bit_product_of_three_primes() {
        // 1099511627689 * 1099511627791 * 274877906899 (two ~2^40 and one ~2^38 prime)
        let n = BigUint::from(1_099_511_627_689u64) * 1_099_511_627_791u64 * 274_877_906_899u64;
        let f = factorize(&n, &Control::unlimited());
        assert!(f.is_complete());
        let product: BigUint = f.factors.iter().map(|p| p.p.pow(p.e)).product();
        assert_eq!(product, n);
    }

    #[test]
    fn perfect_powers_of_large_primes_are_found() {
        let p = BigUint::from_str("1000000000000000003").expect("literal"); // prime
        let n = p.pow(3);
        let f = factorize(&n, &Control::unlimited());
        assert_eq!(f.factors.len(), 1);
        assert_eq!(f.factors[0].p, p);
        assert_eq!(f.factors[0].e, 3);
    }

    #[test]
    fn a_cancelled_run_reports_partial_results() {
        // 2^3 * a product of two ~100-bit primes: rho cannot finish.
        let p = (BigUint::one() << 107u32) - 1u32; // M107, prime
        let q = (BigUint::one() << 127u32) - 1u32; // M127, prime
        let n = BigUint::from(8u32) * &p * &q;
        let ctl = Control::unlimited();
        ctl.cancel();
        let f = factorize(&n, &ctl);
        assert_eq!(f.stopped, Some(Stop::Cancelled));
        assert_eq!(f.factors[0].p, BigUint::from(2u32));
        assert_eq!(f.unfactored, vec![p * q]);
    }
}
