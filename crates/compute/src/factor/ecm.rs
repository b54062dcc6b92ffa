//! Lenstra's elliptic-curve method on Montgomery curves (`By^2 = x^3 + Ax^2 + x`),
//! projective x:z coordinates, Suyama's parametrisation (group order divisible
//! by 12), generic over the Montgomery word width. Stage 1 multiplies by every
//! prime power up to `b1` with the Montgomery ladder; stage 2 is the standard
//! baby-step giant-step continuation up to `b2`. Finds factors of 15 to 40
//! bits faster than Pollard-Brent, whose cost grows with the square root of
//! the factor.

use std::sync::OnceLock;

use super::mont::{gcd, Montgomery, Word};
use super::small::primes_below;
use crate::control::{Control, Stop};

/// Giant-step width of stage 2.
const D: u64 = 60;
/// The odd residues below D/2 coprime to D: stage 2's baby steps.
const BABY: [u64; 8] = [1, 7, 11, 13, 17, 19, 23, 29];

#[derive(Clone, Copy)]
struct Point<W> {
    x: W,
    z: W,
}

/// One curve: `a24 = (A + 2) / 4 = num / den`, kept as a fraction so that no
/// modular inverse is needed.
struct Curve<'m, M: Montgomery> {
    m: &'m M,
    num: M::W,
    den: M::W,
}

impl<M: Montgomery> Curve<'_, M> {
    #[inline(always)]
    fn dbl(&self, p: Point<M::W>) -> Point<M::W> {
        let m = self.m;
        let s = m.add(p.x, p.z);
        let d = m.sub(p.x, p.z);
        let t1 = m.mul(s, s);
        let t2 = m.mul(d, d);
        let t3 = m.sub(t1, t2);
        let dt2 = m.mul(self.den, t2);
        Point { x: m.mul(dt2, t1), z: m.mul(t3, m.add(dt2, m.mul(self.num, t3))) }
    }

    /// `p + q` given `diff = p - q`.
    #[inline(always)]
    fn add(&self, p: Point<M::W>, q: Point<M::W>, diff: Point<M::W>) -> Point<M::W> {
        let m = self.m;
        let u = m.mul(m.sub(p.x, p.z), m.add(q.x, q.z));
        let v = m.mul(m.add(p.x, p.z), m.sub(q.x, q.z));
        let s = m.add(u, v);
        let d = m.sub(u, v);
        Point { x: m.mul(diff.z, m.mul(s, s)), z: m.mul(diff.x, m.mul(d, d)) }
    }

    /// `[k]p` by the Montgomery ladder (`k >= 1`).
    fn mul(&self, p: Point<M::W>, k: u64) -> Point<M::W> {
        if k == 1 {
            return p;
        }
        let mut r0 = p;
        let mut r1 = self.dbl(p);
        for bit in (0..63 - k.leading_zeros()).rev() {
            if (k >> bit) & 1 == 1 {
                r0 = self.add(r1, r0, p);
                r1 = self.dbl(r1);
            } else {
                r1 = self.add(r0, r1, p);
                r0 = self.dbl(r0);
            }
        }
        r0
    }
}

/// Stage-1 multipliers: the prime powers up to `b1`, packed into as few u64
/// factors as possible. Cached per `b1`.
pub(crate) fn stage1_scalars(b1: u64) -> Vec<u64> {
    static CACHE: OnceLock<std::sync::Mutex<Vec<(u64, std::sync::Arc<Vec<u64>>)>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Ok(c) = cache.lock() {
        if let Some((_, v)) = c.iter().find(|(b, _)| *b == b1) {
            return v.as_ref().clone();
        }
    }
    let mut out = Vec::new();
    let mut acc: u64 = 1;
    for p in primes_below(b1 + 1) {
        let mut q = p;
        while q * p <= b1 {
            q *= p;
        }
        match acc.checked_mul(q) {
            Some(v) => acc = v,
            None => {
                out.push(acc);
                acc = q;
            }
        }
    }
    out.push(acc);
    if let Ok(mut c) = cache.lock() {
        c.push((b1, std::sync::Arc::new(out.clone())));
    }
    out
}

/// Parameters by the size of the number to split.
#[derive(Debug, Clone, Copy)]
pub struct EcmParams {
    pub b1: u64,
    pub b2: u64,
    pub curves: u32,
}

impl EcmParams {
    /// Tuned on semiprimes of balanced size (`scripts/bench-factor.sh`).
    pub fn for_bits(bits: u32) -> Self {
        let (b1, curves) = match bits {
            0..=44 => (27, 32),
            45..=52 => (70, 64),
            53..=58 => (110, 96),
            59..=64 => (200, 128),
            65..=80 => (250, 200),
            81..=100 => (500, 400),
            _ => (1000, 1000),
        };
        Self { b1, b2: 35 * b1, curves }
    }
}

/// Runs up to `params.curves` curves; `Ok(Some(d))` with a non-trivial factor.
pub fn ecm<M: Montgomery>(m: &M, params: EcmParams, first_sigma: u64, ctl: Option<&Control>) -> Result<Option<M::W>, Stop> {
    let n = m.modulus();
    let scalars = stage1_scalars(params.b1);
    let small = |v: u64| m.to_mont(M::W::from_u64(v));
    for c in 0..params.curves as u64 {
        if let Some(ctl) = ctl {
            ctl.check()?;
        }
        // Suyama: u = s^2 - 5, v = 4s, x0 = u^3, z0 = v^3,
        // (A + 2) / 4 = (v - u)^3 (3u + v) / (16 u^3 v).
        let sigma = small(first_sigma + c);
        let u = m.sub(m.mul(sigma, sigma), small(5));
        let v = m.add(m.add(sigma, sigma), m.add(sigma, sigma));
        let u3 = m.mul(m.mul(u, u), u);
        let v3 = m.mul(m.mul(v, v), v);
        let vmu = m.sub(v, u);
        let num = m.mul(m.mul(m.mul(vmu, vmu), vmu), m.add(m.add(m.add(u, u), u), v));
        let den = m.mul(small(16), m.mul(u3, v));
        let g = gcd(den, n);
        if g != M::W::ONE {
            if g != n {
                return Ok(Some(g));
            }
            continue;
        }
        let curve = Curve { m, num, den };
        let mut q = Point { x: u3, z: v3 };
        for &k in &scalars {
            q = curve.mul(q, k);
        }
        let g = gcd(q.z, n);
        if g == n {
            continue;
        }
        if g != M::W::ONE {
            return Ok(Some(g));
        }
        if let Some(g) = stage2(&curve, q, params, n) {
            return Ok(Some(g));
        }
    }
    Ok(None)
}

fn stage2<M: Montgomery>(curve: &Curve<'_, M>, q: Point<M::W>, params: EcmParams, n: M::W) -> Option<M::W> {
    let m = curve.m;
    // Baby steps: [j]q for the odd j < D/2 (all computed, the coprime ones kept).
    let q2 = curve.dbl(q);
    let mut odd = Vec::with_capacity((D / 4) as usize);
    odd.push(q); // [1]q
    odd.push(curve.add(q2, q, q)); // [3]q
    for i in 2..(D / 4) as usize {
        let next = curve.add(odd[i - 1], q2, odd[i - 2]);
        odd.push(next);
    }
    let babies: Vec<Point<M::W>> = BABY.iter().map(|&j| odd[(j / 2) as usize]).collect();
    // Giant steps: [mD]q from m0 = max(2, b1 / D).
    let g = curve.mul(q, D);
    let m0 = (params.b1 / D).max(2);
    let mut prev = curve.mul(q, (m0 - 1) * D);
    let mut cur = curve.mul(q, m0 * D);
    let mut acc = m.one();
    let steps = params.b2 / D + 1 - m0;
    for _ in 0..steps {
        for b in &babies {
            let t = m.sub(m.mul(cur.x, b.z), m.mul(b.x, cur.z));
            acc = m.mul(acc, t);
        }
        let next = curve.add(cur, g, prev);
        prev = cur;
        cur = next;
    }
    let f = gcd(acc, n);
    (f != M::W::ONE && f != n).then_some(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::factor::mont::{Mont128, Mont64};

    #[test]
    fn finds_factors_of_64_bit_semiprimes() {
        for n in [4_294_967_291u64 * 4_294_967_279, 3_037_000_493 * 3_037_000_453, 1_000_003 * 998_244_353] {
            let m = Mont64::new(n);
            let d = ecm(&m, EcmParams::for_bits(64), 6, None).expect("not stopped").expect("a factor");
            assert!(d > 1 && d < n && n % d == 0, "{n}: {d}");
        }
    }

    #[test]
    fn finds_40_bit_factors_of_128_bit_numbers() {
        let p: u128 = 1_099_511_627_791; // 2^40 + 15, prime
        let q: u128 = 170_141_183_460_469_231_731_687_303_715_884_105_727 / (1 << 50); // ~2^77
        let n = p * (q | 1);
        let m = Mont128::new(n);
        let d = ecm(&m, EcmParams { b1: 2000, b2: 200_000, curves: 400 }, 6, None).expect("ok").expect("a factor");
        assert!(d > 1 && d < n && n.is_multiple_of(d));
    }
}
