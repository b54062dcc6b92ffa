//! Factorization of 64-bit integers: trial division by the primes below
//! [`TRIAL_LIMIT`] with a multiply-and-compare divisibility test, a
//! deterministic Miller-Rabin test, and Pollard-Brent in Montgomery form.
//! A 64-bit number never takes long enough to need a checkpoint.

use std::sync::OnceLock;

use super::mont::{Mont128, Mont64, Montgomery};
use super::ecm::{ecm, EcmParams};
use super::rho::{brent, Rho};
use super::Method;

/// Composites above this many bits are split with ECM first (Pollard-Brent
/// is faster below; measured with `scripts/bench-factor.sh`).
pub const ECM_ABOVE_BITS: u32 = 44;

/// Trial division covers the primes below this bound.
pub const TRIAL_LIMIT: u64 = 1 << 12;

/// An odd prime with what a divisibility test by it needs: `inv = p^-1 mod 2^64`
/// and `lim = floor((2^64 - 1) / p)`; `n` is divisible by `p` iff
/// `n * inv mod 2^64 <= lim`.
#[derive(Clone, Copy)]
struct OddPrime {
    p: u64,
    inv: u64,
    lim: u64,
}

/// The odd primes below `limit`, by a simple sieve of Eratosthenes.
pub fn primes_below(limit: u64) -> Vec<u64> {
    let limit = limit as usize;
    let mut composite = vec![false; limit];
    let mut out = Vec::new();
    for i in 2..limit {
        if !composite[i] {
            out.push(i as u64);
            let mut j = i * i;
            while j < limit {
                composite[j] = true;
                j += i;
            }
        }
    }
    out
}

fn trial_primes() -> &'static [OddPrime] {
    static TABLE: OnceLock<Vec<OddPrime>> = OnceLock::new();
    TABLE.get_or_init(|| {
        primes_below(TRIAL_LIMIT)
            .into_iter()
            .filter(|&p| p > 2)
            .map(|p| {
                let mut inv = p;
                for _ in 0..5 {
                    inv = inv.wrapping_mul(2u64.wrapping_sub(p.wrapping_mul(inv)));
                }
                OddPrime { p, inv, lim: u64::MAX / p }
            })
            .collect()
    })
}

/// `x % p` from `magic = u64::MAX / p + 1`, with two multiplications and no
/// division (Lemire, Kaser and Kurz 2019); exact for every 32-bit `x` and `p`.
pub(crate) fn fastmod(x: u32, magic: u64, p: u32) -> u32 {
    let low = magic.wrapping_mul(u64::from(x));
    ((u128::from(low) * u128::from(p)) >> 64) as u32
}

/// Deterministic primality for every 64-bit integer: Miller-Rabin with the
/// seven bases of Jim Sinclair, which have no 64-bit counterexample.
pub fn is_prime_u64(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    for p in [2u64, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37] {
        if n.is_multiple_of(p) {
            return n == p;
        }
    }
    if n < 41 * 41 {
        return true;
    }
    let m = Mont64::new(n);
    let s = (n - 1).trailing_zeros();
    let d = (n - 1) >> s;
    const BASES: [u64; 7] = [2, 325, 9375, 28178, 450775, 9780504, 1795265022];
    BASES.iter().all(|&b| {
        let b = b % n;
        b == 0 || m.sprp(b, d, s)
    })
}

/// Miller-Rabin on a 128-bit odd `n` to the given bases (a fast pre-filter;
/// primes above 2^64 are proven by the BPSW test in [`super::big`]).
pub fn sprp_u128(n: u128, bases: &[u64]) -> bool {
    let m = Mont128::new(n);
    let s = (n - 1).trailing_zeros();
    let d = (n - 1) >> s;
    bases.iter().all(|&b| {
        let b = b as u128 % n;
        b == 0 || m.sprp(b, d, s)
    })
}

/// Integer square root of a u64, exact.
pub fn isqrt(n: u64) -> u64 {
    let mut r = (n as f64).sqrt() as u64;
    while r.checked_mul(r).is_none_or(|sq| sq > n) {
        r -= 1;
    }
    while (r + 1).checked_mul(r + 1).is_some_and(|sq| sq <= n) {
        r += 1;
    }
    r
}

/// Appends the prime factors of `n` (with multiplicity, unsorted) to `out`,
/// each with the method that isolated it.
pub fn factor_u64(mut n: u64, out: &mut Vec<(u64, Method)>) {
    if n <= 1 {
        return;
    }
    let tz = n.trailing_zeros();
    for _ in 0..tz {
        out.push((2, Method::TrialDivision));
    }
    n >>= tz;
    for op in trial_primes() {
        if op.p * op.p > n {
            break;
        }
        while n.wrapping_mul(op.inv) <= op.lim {
            out.push((op.p, Method::TrialDivision));
            n /= op.p;
        }
    }
    if n == 1 {
        return;
    }
    if n < TRIAL_LIMIT * TRIAL_LIMIT {
        // No factor below TRIAL_LIMIT and below its square: prime.
        out.push((n, Method::TrialDivision));
        return;
    }
    split_u64(n, out);
}

/// `n` odd, > 1, without factors below [`TRIAL_LIMIT`].
fn split_u64(n: u64, out: &mut Vec<(u64, Method)>) {
    if is_prime_u64(n) {
        out.push((n, Method::PrimalityProof));
        return;
    }
    let r = isqrt(n);
    if r * r == n {
        split_u64(r, out);
        split_u64(r, out);
        return;
    }
    let m = Mont64::new(n);
    let bits = 64 - n.leading_zeros();
    if bits > ECM_ABOVE_BITS {
        if let Ok(Some(d)) = ecm(&m, EcmParams::for_bits(bits), 6, None) {
            return split_parts(n, d, Method::Ecm, out);
        }
    }
    for c in 1u64.. {
        match brent(&m, c, None, u64::MAX) {
            Rho::Found(d) => return split_parts(n, d, Method::PollardBrent, out),
            Rho::Failed | Rho::Stopped(_) => continue,
        }
    }
}

/// Splits `n = d * (n / d)` further, crediting `method` with the primes it isolated.
fn split_parts(n: u64, d: u64, method: Method, out: &mut Vec<(u64, Method)>) {
    for part in [d, n / d] {
        let mark = out.len();
        split_u64(part, out);
        for f in &mut out[mark..] {
            if f.1 == Method::PrimalityProof {
                f.1 = method;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(fs: &[(u64, Method)]) -> u128 {
        fs.iter().map(|f| f.0 as u128).product()
    }

    #[test]
    fn primality_agrees_with_trial_division_below_100k() {
        let small = primes_below(100_000);
        let mut set = std::collections::HashSet::new();
        set.extend(small.iter().copied());
        for n in 0..100_000u64 {
            assert_eq!(is_prime_u64(n), set.contains(&n), "{n}");
        }
    }

    #[test]
    fn known_64_bit_primes_and_pseudoprimes() {
        assert!(is_prime_u64(18_446_744_073_709_551_557)); // largest 64-bit prime
        assert!(!is_prime_u64(3_215_031_751)); // strong pseudoprime to 2,3,5,7
        assert!(!is_prime_u64(3_825_123_056_546_413_051)); // spsp to bases 2..23
        assert!(!is_prime_u64(u64::MAX));
    }

    #[test]
    fn factors_hard_cases() {
        for n in [1u64, 2, 4, 1 << 63, u64::MAX, 18_446_744_073_709_551_557,
                  4_294_967_291 * 4_294_967_279, 4_294_967_291 * 4_294_967_291,
                  2_147_483_647 * 2_147_483_647, 1_000_003 * 1_000_003 * 1_000_003,
                  600_851_475_143, 3_825_123_056_546_413_051] {
            let mut out = Vec::new();
            factor_u64(n, &mut out);
            assert_eq!(product(&out), n as u128, "{n}");
            assert!(out.iter().all(|f| is_prime_u64(f.0)), "{n}: {out:?}");
        }
    }
}
