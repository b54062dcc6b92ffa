//! Montgomery arithmetic modulo one odd `n` on eight values at once, one per
//! 64-bit lane of an AVX-512 register, with the 52-bit multiply-adds of
//! AVX-512 IFMA (`vpmadd52luq`/`vpmadd52huq`): ECM runs eight curves side by
//! side on it ([`super::ecm_mp`]). An element is `N` registers, limb `k` of
//! every lane in register `k`, each limb below `2^52`; `R = 2^(52 N)`.
//!
//! One multiplication is `4 N^2` multiply-adds into 64-bit accumulators with
//! the carries left in place (a limb takes at most `4 N` additions below
//! `2^52`, far from overflowing) and propagated once at the end; the running
//! sum moves down a limb as the reduction adds `u n`, so nothing is copied.
//! On an Intel Xeon (Emerald Rapids) an ECM curve at 200 digits runs 7.4
//! times faster this way than one at a time on [`super::mpn::MontN`]
//! (`scripts/bench-factor-ecm.sh`, `docs/benchmarks.md`).
//!
//! [`MontV::new`] is the only way to a `MontV` and returns `None` on a CPU
//! without AVX-512F and IFMA. The arithmetic is in functions compiled for
//! those features (`#[target_feature]`), called, not inlined, by the field's
//! methods (a call costs little beside a product's hundreds of
//! multiply-adds), which is sound because a `MontV` exists. These calls and
//! the conversions between a register and its eight `u64` lanes are the
//! workspace's `unsafe` code besides the prime sieve's crossing loop.

#![allow(unsafe_code)]

use std::arch::x86_64::{
    __m512i, _mm512_add_epi64, _mm512_and_si512, _mm512_cmpeq_epi64_mask, _mm512_madd52hi_epu64, _mm512_madd52lo_epu64, _mm512_mask_blend_epi64,
    _mm512_set1_epi64, _mm512_setzero_si512, _mm512_srli_epi64, _mm512_sub_epi64,
};

use num_bigint::BigUint;
use num_integer::Integer;
use num_traits::{One, Zero};

use super::mpn::{proper, Field};

pub const LANES: usize = 8;
/// The widest [`MontV`]: 20 limbs of 52 bits, 1,040 bits.
pub const MAX_LIMBS: usize = 20;
const MASK: u64 = (1 << 52) - 1;

/// Eight values modulo `n`: limb `k` of lane `i` is lane `i` of register `k`.
pub type Lanes<const N: usize> = [__m512i; N];

/// Arithmetic modulo an odd `n < 2^(52 N)` on [`LANES`] values at once.
pub struct MontV<const N: usize> {
    n: Lanes<N>,
    /// `-n^-1 mod 2^52` in every lane.
    ninv: __m512i,
    one: Lanes<N>,
    modulus: BigUint,
    /// `R^-1 mod n`, to leave Montgomery form.
    r_inv: BigUint,
}

/// Whether this CPU has what [`MontV`] needs.
pub fn supported() -> bool {
    std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512ifma")
}

fn limbs52<const N: usize>(v: &BigUint) -> [u64; N] {
    let mut out = [0u64; N];
    let mut bits = v.iter_u64_digits().flat_map(|d| (0..64).map(move |i| (d >> i) & 1));
    for limb in out.iter_mut() {
        *limb = bits.by_ref().take(52).enumerate().fold(0, |acc, (i, b)| acc | b << i);
    }
    out
}

fn big52(limbs: &[u64]) -> BigUint {
    limbs.iter().rev().fold(BigUint::zero(), |acc, &l| (acc << 52u32) + l)
}

impl<const N: usize> MontV<N> {
    /// None unless the CPU has AVX-512F and IFMA and `n` is odd, above 1 and
    /// below `2^(52 N)`.
    pub fn new(n: &BigUint) -> Option<Self> {
        const { assert!(N <= MAX_LIMBS) };
        if !supported() || n.bits() > 52 * N as u64 || !n.bit(0) || n.bits() < 2 {
            return None;
        }
        let n0 = n.iter_u64_digits().next().unwrap_or(0) & MASK;
        let mut inv = n0; // correct to 3 bits; each Newton step doubles that
        for _ in 0..5 {
            inv = inv.wrapping_mul(2u64.wrapping_sub(n0.wrapping_mul(inv)));
        }
        let r = BigUint::one() << (52 * N);
        let r_inv = r.modinv(n)?;
        Some(Self {
            n: Self::pack_plain(&std::array::from_fn(|_| n.clone())),
            ninv: splat(inv.wrapping_neg() & MASK),
            one: Self::pack_plain(&std::array::from_fn(|_| &r % n)),
            modulus: n.clone(),
            r_inv,
        })
    }

    /// Lane `i` holds `vals[i]` as it is (each below `2^(52 N)`).
    fn pack_plain(vals: &[BigUint; LANES]) -> Lanes<N> {
        let limbs: Vec<[u64; N]> = vals.iter().map(limbs52::<N>).collect();
        std::array::from_fn(|k| from_lanes(std::array::from_fn(|i| limbs[i][k])))
    }

    /// Lane `i` of `a` as it is.
    fn unpack_plain(a: &Lanes<N>) -> [BigUint; LANES] {
        let regs: Vec<[u64; LANES]> = a.iter().map(|r| to_lanes(*r)).collect();
        std::array::from_fn(|i| big52(&regs.iter().map(|r| r[i]).collect::<Vec<u64>>()))
    }

    /// `vals[i] mod n` in Montgomery form, in lane `i`.
    pub fn to_mont(&self, vals: &[BigUint; LANES]) -> Lanes<N> {
        Self::pack_plain(&std::array::from_fn(|i| (&vals[i] << (52 * N)) % &self.modulus))
    }

    /// The plain value of every lane of `a`.
    pub fn to_big(&self, a: &Lanes<N>) -> [BigUint; LANES] {
        Self::unpack_plain(a).map(|v| v * &self.r_inv % &self.modulus)
    }
}

#[inline(always)]
fn splat(v: u64) -> __m512i {
    from_lanes([v; LANES])
}

#[inline(always)]
fn from_lanes(v: [u64; LANES]) -> __m512i {
    // SAFETY: both are 64 plain bytes.
    unsafe { std::mem::transmute::<[u64; LANES], __m512i>(v) }
}

#[inline(always)]
fn to_lanes(v: __m512i) -> [u64; LANES] {
    // SAFETY: both are 64 plain bytes.
    unsafe { std::mem::transmute::<__m512i, [u64; LANES]>(v) }
}

impl<const N: usize> Field for MontV<N> {
    type E = Lanes<N>;

    fn modulus(&self) -> &BigUint {
        &self.modulus
    }

    #[inline(always)]
    fn one(&self) -> Lanes<N> {
        self.one
    }

    #[inline(always)]
    fn zero(&self) -> Lanes<N> {
        [splat(0); N]
    }

    fn of_u64(&self, v: u64) -> Lanes<N> {
        self.to_mont(&std::array::from_fn(|_| BigUint::from(v)))
    }

    #[inline(always)]
    fn mul(&self, a: &Lanes<N>, b: &Lanes<N>) -> Lanes<N> {
        // SAFETY: `self` exists, so the CPU has AVX-512F and IFMA (`new`).
        unsafe { mul(self, a, b) }
    }

    #[inline(always)]
    fn sqr(&self, a: &Lanes<N>) -> Lanes<N> {
        // SAFETY: as in `mul`.
        unsafe { mul(self, a, a) }
    }

    #[inline(always)]
    fn add(&self, a: &Lanes<N>, b: &Lanes<N>) -> Lanes<N> {
        // SAFETY: as in `mul`.
        unsafe { add(self, a, b) }
    }

    #[inline(always)]
    fn sub(&self, a: &Lanes<N>, b: &Lanes<N>) -> Lanes<N> {
        // SAFETY: as in `mul`.
        unsafe { sub(self, a, b) }
    }

    /// Lane by lane; a lane without an inverse whose gcd with `n` is `n`
    /// gets 0 (its curve is lost, the others go on).
    fn inv(&self, a: &Lanes<N>) -> Result<Lanes<N>, BigUint> {
        let plain = self.to_big(a);
        let mut out: [BigUint; LANES] = Default::default();
        let mut alive = false;
        for (o, v) in out.iter_mut().zip(&plain) {
            match v.modinv(&self.modulus) {
                Some(i) => {
                    *o = i;
                    alive = true;
                }
                None => {
                    if let Some(f) = proper(v.gcd(&self.modulus), &self.modulus) {
                        return Err(f);
                    }
                }
            }
        }
        if alive {
            Ok(self.to_mont(&out))
        } else {
            Err(self.modulus.clone())
        }
    }

    fn factor_in(&self, a: &Lanes<N>) -> Option<BigUint> {
        Self::unpack_plain(a).into_iter().find_map(|v| proper(v.gcd(&self.modulus), &self.modulus))
    }
}

/// `a b / R mod n` in every lane (operand scanning; carries kept in the
/// 64-bit accumulators until the end).
#[target_feature(enable = "avx512f,avx512ifma")]
fn mul<const N: usize>(m: &MontV<N>, a: &Lanes<N>, b: &Lanes<N>) -> Lanes<N> {
    let zero = _mm512_setzero_si512();
    // The running sum, a limb shorter after each step.
    let mut t = [zero; N];
    for &bi in b.iter() {
        for j in 0..N {
            t[j] = _mm512_madd52lo_epu64(t[j], a[j], bi);
        }
        for j in 0..N - 1 {
            t[j + 1] = _mm512_madd52hi_epu64(t[j + 1], a[j], bi);
        }
        let top = _mm512_madd52hi_epu64(zero, a[N - 1], bi);
        // u = t_0 (-n^-1) mod 2^52 clears limb 0: t + u n, shifted down a
        // limb as it is added.
        let u = _mm512_madd52lo_epu64(zero, t[0], m.ninv);
        let carry = _mm512_srli_epi64(_mm512_madd52lo_epu64(t[0], u, m.n[0]), 52);
        for j in 1..N {
            t[j - 1] = _mm512_madd52hi_epu64(_mm512_madd52lo_epu64(t[j], u, m.n[j]), u, m.n[j - 1]);
        }
        t[0] = _mm512_add_epi64(t[0], carry);
        t[N - 1] = _mm512_madd52hi_epu64(top, u, m.n[N - 1]);
    }
    let carry = normalise(&mut t);
    // Below 2n < 2R: the carry out is 0 or 1.
    reduce_once(m, &t, carry)
}

/// Carries every limb's excess over 52 bits into the next one; the carry out
/// of the top limb.
#[target_feature(enable = "avx512f")]
fn normalise<const N: usize>(t: &mut Lanes<N>) -> __m512i {
    let mask = _mm512_set1_epi64(MASK as i64);
    let mut carry = _mm512_setzero_si512();
    for limb in t.iter_mut() {
        let v = _mm512_add_epi64(*limb, carry);
        *limb = _mm512_and_si512(v, mask);
        carry = _mm512_srli_epi64(v, 52);
    }
    carry
}

/// In each lane, `a + carry 2^(52 N)` less `n` where that is at least `n`
/// (`a` normalised, `carry` 0 or 1).
#[target_feature(enable = "avx512f")]
fn reduce_once<const N: usize>(m: &MontV<N>, a: &Lanes<N>, carry: __m512i) -> Lanes<N> {
    let mask = _mm512_set1_epi64(MASK as i64);
    let mut d = [_mm512_setzero_si512(); N];
    let mut borrow = _mm512_setzero_si512();
    for k in 0..N {
        let v = _mm512_sub_epi64(_mm512_sub_epi64(a[k], m.n[k]), borrow);
        d[k] = _mm512_and_si512(v, mask);
        borrow = _mm512_srli_epi64(v, 63);
    }
    // a >= n unless the subtraction borrowed out of a value without a
    // carry: keep a - n where borrow == carry.
    let keep = _mm512_cmpeq_epi64_mask(borrow, carry);
    for k in 0..N {
        d[k] = _mm512_mask_blend_epi64(keep, a[k], d[k]);
    }
    d
}

#[target_feature(enable = "avx512f")]
fn add<const N: usize>(m: &MontV<N>, a: &Lanes<N>, b: &Lanes<N>) -> Lanes<N> {
    let mut s = [_mm512_setzero_si512(); N];
    for k in 0..N {
        s[k] = _mm512_add_epi64(a[k], b[k]);
    }
    let carry = normalise(&mut s);
    reduce_once(m, &s, carry)
}

#[target_feature(enable = "avx512f")]
fn sub<const N: usize>(m: &MontV<N>, a: &Lanes<N>, b: &Lanes<N>) -> Lanes<N> {
    let mask = _mm512_set1_epi64(MASK as i64);
    let zero = _mm512_setzero_si512();
    let mut d = [zero; N];
    let mut borrow = zero;
    for k in 0..N {
        let v = _mm512_sub_epi64(_mm512_sub_epi64(a[k], b[k]), borrow);
        d[k] = _mm512_and_si512(v, mask);
        borrow = _mm512_srli_epi64(v, 63);
    }
    // Where a < b, d + n (its carry out cancels the borrow).
    let mut s = [zero; N];
    for k in 0..N {
        s[k] = _mm512_add_epi64(d[k], m.n[k]);
    }
    normalise(&mut s);
    let wrapped = _mm512_cmpeq_epi64_mask(borrow, _mm512_set1_epi64(1));
    for k in 0..N {
        s[k] = _mm512_mask_blend_epi64(wrapped, d[k], s[k]);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use num_bigint::RandBigInt;
    use rand::SeedableRng;

    fn check<const N: usize>(n: &BigUint, rng: &mut rand::rngs::StdRng) {
        let m = MontV::<N>::new(n).expect("odd, fits, supported");
        let big = |v: [BigUint; LANES]| v;
        for _ in 0..50 {
            let a: [BigUint; LANES] = std::array::from_fn(|_| rng.gen_biguint_below(n));
            let b: [BigUint; LANES] = std::array::from_fn(|i| if i == 3 { a[i].clone() } else { rng.gen_biguint_below(n) });
            let (ma, mb) = (m.to_mont(&a), m.to_mont(&b));
            let want = |f: &dyn Fn(&BigUint, &BigUint) -> BigUint| big(std::array::from_fn(|i| f(&a[i], &b[i])));
            assert_eq!(m.to_big(&m.mul(&ma, &mb)), want(&|x, y| x * y % n));
            assert_eq!(m.to_big(&m.sqr(&ma)), want(&|x, _| x * x % n));
            assert_eq!(m.to_big(&m.add(&ma, &mb)), want(&|x, y| (x + y) % n));
            assert_eq!(m.to_big(&m.sub(&ma, &mb)), want(&|x, y| (n + x - y) % n));
        }
        // Values next to n and 0 stay exact.
        let edge: [BigUint; LANES] = std::array::from_fn(|i| match i {
            0 => BigUint::zero(),
            1 => BigUint::one(),
            2 => n - 1u32,
            3 => n - 2u32,
            _ => n >> i,
        });
        let me = m.to_mont(&edge);
        for (x, y) in [(&me, &me), (&me, &m.one()), (&m.zero(), &me)] {
            let (px, py) = (m.to_big(x), m.to_big(y));
            assert_eq!(m.to_big(&m.mul(x, y)), big(std::array::from_fn(|i| &px[i] * &py[i] % n)));
            assert_eq!(m.to_big(&m.add(x, y)), big(std::array::from_fn(|i| (&px[i] + &py[i]) % n)));
            assert_eq!(m.to_big(&m.sub(x, y)), big(std::array::from_fn(|i| (n + &px[i] - &py[i]) % n)));
        }
        let mut xs: Vec<Lanes<N>> = (1..40u64).filter(|&v| BigUint::from(v).gcd(n).is_one()).map(|v| m.of_u64(v * v)).collect();
        let orig = xs.clone();
        m.batch_inv(&mut xs, &mut Vec::new()).expect("n is prime to the values");
        for (x, o) in xs.iter().zip(&orig) {
            assert_eq!(m.to_big(&m.mul(x, o)), big(std::array::from_fn(|_| BigUint::one())));
        }
    }

    #[test]
    fn lanes_match_biguint_at_every_width() {
        if !supported() {
            eprintln!("this CPU has no AVX-512 IFMA: the lanes are not tested here");
            return;
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for bits in [129u64, 156, 260, 500, 664, 665, 1000, 1024] {
            let n = rng.gen_biguint(bits) | BigUint::one() | (BigUint::one() << (bits - 1));
            match bits.div_ceil(52) {
                3 => check::<3>(&n, &mut rng),
                5 => check::<5>(&n, &mut rng),
                10 => check::<10>(&n, &mut rng),
                13 => check::<13>(&n, &mut rng),
                20 => check::<20>(&n, &mut rng),
                other => panic!("no width {other} in the test"),
            }
        }
    }

    #[test]
    fn a_lane_with_a_shared_factor_names_it_and_a_dead_lane_is_dropped() {
        if !supported() {
            return;
        }
        let p = BigUint::from(1_000_000_007u64);
        let n = &p * BigUint::from(340_282_366_920_938_463_463_374_607_431_768_211_297u128);
        let m = MontV::<4>::new(&n).expect("odd");
        let mut vals: [BigUint; LANES] = std::array::from_fn(|i| BigUint::from(i as u64 + 2));
        vals[5] = BigUint::zero();
        let inv = m.inv(&m.to_mont(&vals)).expect("only lane 5 has no inverse, and its gcd is n");
        let back = m.to_big(&inv);
        assert!(back[5].is_zero());
        assert_eq!(&back[2] * &vals[2] % &n, BigUint::one());
        vals[6] = &p * 3u32;
        assert_eq!(m.inv(&m.to_mont(&vals)).err(), Some(p.clone()));
        assert_eq!(m.factor_in(&m.to_mont(&vals)), Some(p));
    }
}
