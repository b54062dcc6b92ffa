//! Lenstra's elliptic-curve method on multi-precision integers (above 128
//! bits, up to 1,024), on [`MontN`] limb arrays.
//!
//! - **Curves**: Montgomery curves `By^2 = x^3 + Ax^2 + x` in x:z coordinates,
//!   Suyama's parametrisation (group order divisible by 12), normalised with
//!   one inversion so that the base point has `z = 1` and `(A + 2) / 4` is a
//!   number: 10 multiplications per bit of stage 1.
//! - **Stage 1**: the Montgomery ladder over the product of every prime power
//!   up to B1 at once (one scalar of about 1.44 B1 bits, cached per B1), so
//!   that the difference of the ladder's two points is always the base point.
//! - **Stage 2**: baby-step giant-step with prime pairing up to `B2 = 100 B1`:
//!   `D = 2310`, baby steps `[j]Q` for the 240 `j < D/2` prime to `D`, giant
//!   steps `[mD]Q` normalised 256 at a time by one inversion, so that each
//!   pair of primes `mD +- j` costs one multiplication.
//! - **Levels**: B1 and curve counts per factor size ([`LEVELS`]); curves of a
//!   level run in parallel on rayon and stop as soon as one finds a factor.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use num_bigint::BigUint;
use num_traits::One;
use rayon::prelude::*;

use super::mpn::{Limbs, MontN};
use crate::control::{Control, Stop};

/// One level of the plan: enough curves at `b1` (and `B2 = B2_PER_B1 * b1`)
/// to find a factor of `digits` digits with probability `1 - 1/e`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    pub digits: u32,
    pub b1: u64,
    pub curves: u32,
}

pub const B2_PER_B1: u64 = 100;

/// B1 per level as GMP-ECM's README recommends; the curve counts are the
/// expected number of curves for a factor of that many digits with our B2 and
/// Suyama's curves, from Dickman's rho with the prime-to-B2 extension
/// (`scripts/ecm-levels.py`, within 10% of what GMP-ECM's `-v` prints for the
/// same B1, B2 and parametrisation where it prints them).
pub const LEVELS: &[Level] = &[
    Level { digits: 15, b1: 2_000, curves: 22 },
    Level { digits: 20, b1: 11_000, curves: 80 },
    Level { digits: 25, b1: 50_000, curves: 265 },
    Level { digits: 30, b1: 250_000, curves: 635 },
    Level { digits: 35, b1: 1_000_000, curves: 1_590 },
    Level { digits: 40, b1: 3_000_000, curves: 4_610 },
    Level { digits: 45, b1: 11_000_000, curves: 9_774 },
];

/// Stage-2 giant step: 2 * 3 * 5 * 7 * 11.
const D: u64 = 2310;
/// Giant steps normalised per inversion.
const GIANT_BATCH: usize = 256;
/// Ladder bits between two checks of the control.
const CHECK_BITS: u64 = 2048;

/// Why a curve or a level ended without a factor.
enum Halt {
    Stop(Stop),
    /// Another curve of the level found a factor.
    Abandoned,
}

/// The odd `j < D/2` prime to `D`: stage 2's baby steps.
fn babies() -> &'static [u64] {
    static TABLE: OnceLock<Vec<u64>> = OnceLock::new();
    TABLE.get_or_init(|| (1..D / 2).step_by(2).filter(|&j| num_integer::Integer::gcd(&j, &D) == 1).collect())
}

/// Per-B1 tables shared by every curve: the stage-1 scalar and stage 2's map
/// of which `mD +- j` are primes in `(B1, B2]`.
struct Plan {
    scalar: BigUint,
    m_lo: u64,
    /// Per giant step `m_lo + i`: a bit per baby step (`babies()` order).
    masks: Vec<[u64; 4]>,
}

fn plan(b1: u64, ctl: &Control) -> Result<Arc<Plan>, Stop> {
    static CACHE: OnceLock<Mutex<HashMap<u64, Arc<Plan>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(p) = cache.lock().ok().and_then(|c| c.get(&b1).cloned()) {
        return Ok(p);
    }
    let b2 = b1 * B2_PER_B1;
    // A product tree over the packed prime powers keeps the multiplications
    // balanced.
    let mut level: Vec<BigUint> = super::ecm::stage1_scalars(b1).into_iter().map(BigUint::from).collect();
    while level.len() > 1 {
        level = level.chunks(2).map(|c| c.iter().product()).collect();
    }
    let scalar = level.pop().unwrap_or_else(BigUint::one);
    let index: HashMap<u64, usize> = babies().iter().enumerate().map(|(i, &j)| (j, i)).collect();
    let m_lo = (b1 + 1 + D / 2) / D;
    let m_hi = (b2 + D / 2) / D;
    let mut masks = vec![[0u64; 4]; (m_hi + 1 - m_lo) as usize];
    crate::primes::for_each_prime(b1 + 1, b2, ctl, |ps| {
        for &p in ps {
            let m = (p + D / 2) / D;
            let j = (p as i64 - (m * D) as i64).unsigned_abs();
            if let Some(&i) = index.get(&j) {
                masks[(m - m_lo) as usize][i / 64] |= 1 << (i % 64);
            }
        }
    })?;
    let p = Arc::new(Plan { scalar, m_lo, masks });
    if let Ok(mut c) = cache.lock() {
        c.insert(b1, Arc::clone(&p));
    }
    Ok(p)
}

#[derive(Clone, Copy)]
struct Point<const L: usize> {
    x: Limbs<L>,
    z: Limbs<L>,
}

struct Curve<'m, const L: usize> {
    m: &'m MontN<L>,
    /// `(A + 2) / 4`.
    a24: Limbs<L>,
}

impl<const L: usize> Curve<'_, L> {
    #[inline(always)]
    fn dbl(&self, p: &Point<L>) -> Point<L> {
        let m = self.m;
        let ss = m.sqr(&m.add(&p.x, &p.z));
        let dd = m.sqr(&m.sub(&p.x, &p.z));
        let t = m.sub(&ss, &dd);
        Point { x: m.mul(&ss, &dd), z: m.mul(&t, &m.add(&dd, &m.mul(&self.a24, &t))) }
    }

    /// `p + q` given `p - q = (x_diff : 1)`.
    #[inline(always)]
    fn add_unit(&self, p: &Point<L>, q: &Point<L>, x_diff: &Limbs<L>) -> Point<L> {
        let m = self.m;
        let u = m.mul(&m.sub(&p.x, &p.z), &m.add(&q.x, &q.z));
        let v = m.mul(&m.add(&p.x, &p.z), &m.sub(&q.x, &q.z));
        Point { x: m.sqr(&m.add(&u, &v)), z: m.mul(x_diff, &m.sqr(&m.sub(&u, &v))) }
    }

    /// `p + q` given `p - q = diff`.
    #[inline(always)]
    fn add(&self, p: &Point<L>, q: &Point<L>, diff: &Point<L>) -> Point<L> {
        let m = self.m;
        let u = m.mul(&m.sub(&p.x, &p.z), &m.add(&q.x, &q.z));
        let v = m.mul(&m.add(&p.x, &p.z), &m.sub(&q.x, &q.z));
        Point { x: m.mul(&diff.z, &m.sqr(&m.add(&u, &v))), z: m.mul(&diff.x, &m.sqr(&m.sub(&u, &v))) }
    }

    /// `[k](x : 1)` by the Montgomery ladder over the `bits` of `k` (most
    /// significant first, the leading one included), checking `stop` every
    /// [`CHECK_BITS`].
    fn ladder(&self, x: &Limbs<L>, bits: u64, bit: impl Fn(u64) -> bool, stop: &dyn Fn() -> Result<(), Halt>) -> Result<Point<L>, Halt> {
        let base = Point { x: *x, z: self.m.one() };
        let mut r0 = base;
        let mut r1 = self.dbl(&base);
        for i in (0..bits.saturating_sub(1)).rev() {
            if bit(i) {
                r0 = self.add_unit(&r1, &r0, x);
                r1 = self.dbl(&r1);
            } else {
                r1 = self.add_unit(&r0, &r1, x);
                r0 = self.dbl(&r0);
            }
            if i % CHECK_BITS == 0 {
                stop()?;
            }
        }
        Ok(r0)
    }

    fn mul_small(&self, x: &Limbs<L>, k: u64) -> Point<L> {
        let never = || Ok(());
        match self.ladder(x, 64 - u64::from(k.leading_zeros()), |i| (k >> i) & 1 == 1, &never) {
            Ok(p) => p,
            Err(_) => unreachable!("a ladder that is never stopped"),
        }
    }
}

/// A curve's outcome: a divisor of `n` that is neither 1 nor `n`, or none.
type Found = Option<BigUint>;

/// A proper divisor, if `g` is one.
fn proper(g: BigUint, n: &BigUint) -> Found {
    (!g.is_one() && &g != n).then_some(g)
}

/// One curve (Suyama's `sigma >= 6`) through both stages.
fn curve<const L: usize>(m: &MontN<L>, sigma: u64, plan: &Plan, stop: &dyn Fn() -> Result<(), Halt>) -> Result<Found, Halt> {
    let n = m.modulus();
    // u = s^2 - 5, v = 4s, x0 = u^3 / v^3, (A + 2) / 4 = (v - u)^3 (3u + v) / (16 u^3 v).
    let s = m.from_u64(sigma);
    let u = m.sub(&m.sqr(&s), &m.from_u64(5));
    let v = m.add(&m.add(&s, &s), &m.add(&s, &s));
    let u3 = m.mul(&m.sqr(&u), &u);
    let v3 = m.mul(&m.sqr(&v), &v);
    let vmu = m.sub(&v, &u);
    let num = m.mul(&m.mul(&m.sqr(&vmu), &vmu), &m.add(&m.add(&m.add(&u, &u), &u), &v));
    let den = m.mul(&m.from_u64(16), &m.mul(&u3, &v));
    // One inversion gives both 1/v^3 and 1/den.
    let inv = match m.inv(&m.mul(&den, &v3)) {
        Ok(i) => i,
        Err(g) => return Ok(proper(g, n)),
    };
    let x0 = m.mul(&m.mul(&u3, &den), &inv);
    let curve = Curve { m, a24: m.mul(&m.mul(&num, &v3), &inv) };

    let k = &plan.scalar;
    let q = curve.ladder(&x0, k.bits(), |i| k.bit(i), stop)?;
    // z has no inverse exactly when gcd(z, n) is not 1: the inversion is the
    // end-of-stage-1 gcd.
    let xq = match m.inv(&q.z) {
        Ok(i) => m.mul(&q.x, &i),
        Err(g) => return Ok(proper(g, n)),
    };
    stage2(&curve, &xq, plan, stop)
}

fn stage2<const L: usize>(curve: &Curve<'_, L>, xq: &Limbs<L>, plan: &Plan, stop: &dyn Fn() -> Result<(), Halt>) -> Result<Found, Halt> {
    let m = curve.m;
    let n = m.modulus();
    let mut scratch = Vec::new();
    // Baby steps: the odd multiples [j]Q, j < D/2, those prime to D kept.
    let q = Point { x: *xq, z: m.one() };
    let q2 = curve.dbl(&q);
    // [j]Q and [j + 2]Q.
    let (mut this, mut next) = (q, curve.add_unit(&q2, &q, xq));
    let mut kept: Vec<Point<L>> = Vec::with_capacity(babies().len());
    let mut wanted = babies().iter().peekable();
    for j in (1..D / 2).step_by(2) {
        if wanted.next_if_eq(&&j).is_some() {
            kept.push(this);
        }
        let after = curve.add(&next, &q2, &this);
        this = next;
        next = after;
    }
    let mut zs: Vec<Limbs<L>> = kept.iter().map(|p| p.z).collect();
    if let Err(g) = m.batch_inv(&mut zs, &mut scratch) {
        return Ok(proper(g, n));
    }
    let bx: Vec<Limbs<L>> = kept.iter().zip(&zs).map(|(p, zi)| m.mul(&p.x, zi)).collect();

    // Giant steps [mD]Q from m_lo on, normalised a batch at a time.
    let g = curve.mul_small(xq, D);
    let mut a = curve.mul_small(xq, plan.m_lo * D);
    let mut b = curve.mul_small(xq, (plan.m_lo + 1) * D);
    let mut acc = m.one();
    let mut xs: Vec<Limbs<L>> = Vec::with_capacity(GIANT_BATCH);
    let mut zs: Vec<Limbs<L>> = Vec::with_capacity(GIANT_BATCH);
    for chunk in plan.masks.chunks(GIANT_BATCH) {
        xs.clear();
        zs.clear();
        for _ in chunk {
            xs.push(a.x);
            zs.push(a.z);
            let next = curve.add(&b, &g, &a);
            a = b;
            b = next;
        }
        if let Err(g) = m.batch_inv(&mut zs, &mut scratch) {
            return Ok(proper(g, n));
        }
        for ((mask, x), zi) in chunk.iter().zip(&xs).zip(&zs) {
            let xm = m.mul(x, zi);
            for (w, &bits) in mask.iter().enumerate() {
                let mut bits = bits;
                while bits != 0 {
                    let i = w * 64 + bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    acc = m.mul(&acc, &m.sub(&xm, &bx[i]));
                }
            }
        }
        stop()?;
    }
    Ok(proper(m.gcd(&acc), n))
}

/// How far a level got.
pub enum LevelOutcome {
    Found(BigUint),
    /// Every curve ran without a factor.
    Exhausted,
}

/// Runs `level.curves` curves on `n` (odd, composite, 129 to 1,024 bits), the
/// first with `first_sigma`, in parallel; `progress(curves_done)` after each.
pub fn run_level(n: &BigUint, level: &Level, first_sigma: u64, ctl: &Control, progress: &(dyn Fn(u32) + Sync)) -> Result<LevelOutcome, Stop> {
    macro_rules! widths {
        ($($l:literal)*) => {
            match n.bits().div_ceil(64) {
                $($l => run_width::<$l>(n, level, first_sigma, ctl, progress),)*
                _ => Ok(LevelOutcome::Exhausted),
            }
        };
    }
    widths!(3 4 5 6 7 8 9 10 11 12 13 14 15 16)
}

/// The widest number [`run_level`] takes.
pub const MAX_BITS: u64 = 1024;

fn run_width<const L: usize>(n: &BigUint, level: &Level, first_sigma: u64, ctl: &Control, progress: &(dyn Fn(u32) + Sync)) -> Result<LevelOutcome, Stop> {
    let Some(m) = MontN::<L>::new(n) else { return Ok(LevelOutcome::Exhausted) };
    let plan = plan(level.b1, ctl)?;
    let abandon = AtomicBool::new(false);
    let done = AtomicU32::new(0);
    let stop = || -> Result<(), Halt> {
        if abandon.load(Ordering::Relaxed) {
            return Err(Halt::Abandoned);
        }
        ctl.check().map_err(Halt::Stop)
    };
    let outcome = (0..level.curves as u64).into_par_iter().find_map_any(|c| match curve(&m, first_sigma + c, &plan, &stop) {
        Ok(Some(f)) => {
            abandon.store(true, Ordering::Relaxed);
            Some(Ok(f))
        }
        Ok(None) => {
            progress(done.fetch_add(1, Ordering::Relaxed) + 1);
            None
        }
        Err(Halt::Stop(s)) => {
            abandon.store(true, Ordering::Relaxed);
            Some(Err(s))
        }
        Err(Halt::Abandoned) => None,
    });
    match outcome {
        Some(Ok(f)) => Ok(LevelOutcome::Found(f)),
        Some(Err(s)) => Err(s),
        None => Ok(LevelOutcome::Exhausted),
    }
}

/// Times one curve at `b1` on `n` (benchmarks and the per-curve comparison
/// with GMP-ECM): the factor it found, if any.
pub fn one_curve(n: &BigUint, b1: u64, sigma: u64) -> Option<BigUint> {
    let level = Level { digits: 0, b1, curves: 1 };
    match run_level(n, &level, sigma, &Control::unlimited(), &|_| {}) {
        Ok(LevelOutcome::Found(f)) => Some(f),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use num_integer::Integer;
    use std::str::FromStr;

    fn prime(s: &str) -> BigUint {
        BigUint::from_str(s).expect("literal")
    }

    #[test]
    fn the_stage_two_map_holds_every_prime_of_the_range_once() {
        let b1 = 11_000;
        let p = plan(b1, &Control::unlimited()).expect("unlimited");
        let marked: u32 = p.masks.iter().flatten().map(|w| w.count_ones()).sum();
        let mut primes = 0u32;
        crate::primes::for_each_prime(b1 + 1, b1 * B2_PER_B1, &Control::unlimited(), |ps| primes += ps.len() as u32).expect("unlimited");
        // mD + j and mD - j can both be prime: one bit covers the pair.
        assert!(marked <= primes && marked * 10 > primes * 7, "{marked} bits for {primes} primes");
        assert_eq!(babies().len(), 240);
    }

    #[test]
    fn finds_a_20_digit_factor_of_a_100_digit_number() {
        let p = prime("17485029721327973713");
        let q = prime("69054429069287486672210540816423036187859288681522642757592834861726067084961693");
        let n = &p * &q;
        let level = LEVELS[1];
        let mut found = None;
        for round in 0..4 {
            if let LevelOutcome::Found(f) = run_level(&n, &level, 6 + round * u64::from(level.curves), &Control::unlimited(), &|_| {}).expect("unlimited") {
                found = Some(f);
                break;
            }
        }
        assert_eq!(found, Some(p));
    }

    #[test]
    fn a_curve_whose_group_order_is_smooth_finds_the_factor() {
        // A 12-digit factor and a 286-digit cofactor: a p15 curve finds it.
        let p = prime("100000000003");
        let q = (BigUint::one() << 950u32) + 7u32; // odd, any cofactor will do
        let n = &p * &q;
        let found = (6..60).find_map(|s| one_curve(&n, 2_000, s));
        let f = found.expect("a factor within 54 curves");
        assert!(n.is_multiple_of(&f) && !f.is_one() && f != n);
    }

    #[test]
    fn a_stopped_level_says_why() {
        let n = prime("1207418744665826110257942042212963297643078516519607888581393971612705489332791174062219625915976109");
        let ctl = Control::unlimited();
        ctl.cancel();
        assert!(matches!(run_level(&n, &LEVELS[0], 6, &ctl, &|_| {}), Err(Stop::Cancelled)));
    }
}
