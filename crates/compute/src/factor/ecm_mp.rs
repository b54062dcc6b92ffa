//! Lenstra's elliptic-curve method on multi-precision integers (above 128
//! bits, up to 1,024).
//!
//! - **Arithmetic**: the formulas are written once on [`Field`]. Where the
//!   CPU has AVX-512 IFMA they run on `MontV` (`super::mpv`): eight curves
//!   side by side, one per 64-bit lane, 52-bit limbs, five to seven times
//!   the curves per second of one at a time. Elsewhere they run on
//!   [`MontN`]'s 64-bit limb arrays, one curve at a time (`Engine`).
//! - **Curves**: Edwards curves `x^2 + y^2 = 1 + d x^2 y^2` with rational
//!   torsion Z/12 (the family of Bernstein, Birkner, Lange and Peters, "ECM
//!   using Edwards curves", made from the multiples `[k](-2, 4)` of the
//!   rank-one curve `v^2 = u^3 - 12u`): every group order is divisible by 12,
//!   and a curve finds a factor as often as Suyama's or a little more often
//!   (`scripts/ecm-curves.gp` counts both).
//! - **Stage 1**: the product of every prime power up to B1 at once (one
//!   scalar of about 1.44 B1 bits, cached per B1 as signed digits of a
//!   width-6 window), in extended coordinates (Hisil, Wong, Carter and
//!   Dawson): a doubling is 3 multiplications and 4 squarings, and one digit
//!   in 7 adds an odd multiple up to 31 kept with `z = 1` (7 more), so about
//!   8 multiplications per bit.
//! - **Stage 2**: on the curve's Montgomery form `u = (1 + y) / (1 - y)`, x:z
//!   coordinates: baby-step giant-step with prime pairing up to
//!   `B2 = 100 B1`: `D = 2310`, baby steps `[j]Q` for the 240 `j < D/2` prime
//!   to `D`, giant steps `[mD]Q` normalised 256 at a time by one inversion,
//!   so that each pair of primes `mD +- j` costs one multiplication.
//! - **Levels**: B1 and curve counts per factor size ([`LEVELS`]); the
//!   batches of curves of a level (eight curves or one) run in parallel on
//!   rayon and stop as soon as one finds a factor.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use num_bigint::BigUint;
use num_traits::One;
use rayon::prelude::*;

use super::mpn::{proper, Field, MontN};
#[cfg(target_arch = "x86_64")]
use super::mpv::{MontV, LANES};
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

/// B1 per level as GMP-ECM's README recommends (Dickman's rho with our costs,
/// about 8 multiplications per bit of stage 1 and 0.83 per prime of stage 2,
/// picks the same ones); the curve counts are the expected number of curves
/// for a factor of that many digits with our B2, from Dickman's rho with the
/// prime-to-B2 extension (`scripts/ecm-levels.py`, within 10% of what
/// GMP-ECM's `-v` prints for Suyama's curves with the same B1 and B2 where it
/// prints them), rounded up to a multiple of 8 (a batch of lanes). The Z/12
/// curves find as many: `scripts/ecm-curves.gp` counts their group orders
/// beside Suyama's.
pub const LEVELS: &[Level] = &[
    Level { digits: 15, b1: 2_000, curves: 24 },
    Level { digits: 20, b1: 11_000, curves: 80 },
    Level { digits: 25, b1: 50_000, curves: 272 },
    Level { digits: 30, b1: 250_000, curves: 640 },
    Level { digits: 35, b1: 1_000_000, curves: 1_592 },
    Level { digits: 40, b1: 3_000_000, curves: 4_616 },
    Level { digits: 45, b1: 11_000_000, curves: 9_776 },
];

/// Stage 1's signed window: digits are odd and below `2^(WINDOW - 1)`.
const WINDOW: u32 = 6;
/// Stage-2 giant step: 2 * 3 * 5 * 7 * 11.
const D: u64 = 2310;
/// Giant steps normalised per inversion.
const GIANT_BATCH: usize = 256;
/// Stage-1 digits between two checks of the control.
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

/// Per-B1 tables shared by every curve: the stage-1 scalar's window digits
/// and stage 2's map of which `mD +- j` are primes in `(B1, B2]`.
struct Plan {
    /// Most significant first; the first is positive.
    digits: Vec<i8>,
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
    let digits = signed_window(&level.pop().unwrap_or_else(BigUint::one), WINDOW);
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
    let p = Arc::new(Plan { digits, m_lo, masks });
    if let Ok(mut c) = cache.lock() {
        c.insert(b1, Arc::clone(&p));
    }
    Ok(p)
}

/// The width-`w` signed window digits (w-NAF) of `k > 0`, most significant
/// first: `k = sum digit_i 2^i`, every nonzero digit odd and below
/// `2^(w - 1)` in size, at least `w - 1` zeros between two of them.
fn signed_window(k: &BigUint, w: u32) -> Vec<i8> {
    let mut bits: Vec<bool> = (0..k.bits()).map(|i| k.bit(i)).collect();
    bits.extend([false; 8]);
    let mut digits = vec![0i8; bits.len()];
    let mut i = 0;
    while i + (w as usize) < bits.len() {
        if !bits[i] {
            i += 1;
            continue;
        }
        let window: i32 = (0..w as usize).map(|j| i32::from(bits[i + j]) << j).sum();
        let digit = if window >= 1 << (w - 1) { window - (1 << w) } else { window };
        digits[i] = digit as i8;
        bits[i..i + w as usize].fill(false);
        if digit < 0 {
            // k - digit 2^i = k - window 2^i + 2^(i + w): carry into bit i + w.
            let mut j = i + w as usize;
            while bits[j] {
                bits[j] = false;
                j += 1;
            }
            bits[j] = true;
        }
        i += w as usize;
    }
    while digits.last() == Some(&0) {
        digits.pop();
    }
    digits.reverse();
    digits
}

/// A curve's starting point `(x, y)` and its `d`.
type StartingCurve<E> = ((E, E), E);

/// A point `(X/Z, Y/Z)` of the Edwards curve `x^2 + y^2 = 1 + d x^2 y^2`.
#[derive(Clone, Copy)]
struct Ed<E> {
    x: E,
    y: E,
    z: E,
}

/// The same in extended coordinates: also `T = XY/Z`, which additions need.
#[derive(Clone, Copy)]
struct EdExt<E> {
    p: Ed<E>,
    t: E,
}

/// A point with `z = 1` and `d x y` at hand: what stage 1 adds.
#[derive(Clone, Copy)]
struct EdAffine<E> {
    x: E,
    y: E,
    dxy: E,
}

struct Edwards<'m, F: Field> {
    m: &'m F,
    d: F::E,
}

impl<F: Field> Edwards<'_, F> {
    /// The point `(EF : GH : FG)` of the formulas' `E, F, G, H`.
    #[inline(always)]
    fn point(&self, [e, f, g, h]: &[F::E; 4]) -> Ed<F::E> {
        Ed { x: self.m.mul(e, f), y: self.m.mul(g, h), z: self.m.mul(f, g) }
    }

    /// The same with `T = EH`.
    #[inline(always)]
    fn point_ext(&self, terms: &[F::E; 4]) -> EdExt<F::E> {
        EdExt { p: self.point(terms), t: self.m.mul(&terms[0], &terms[3]) }
    }

    /// `2p` in projective coordinates: 3 multiplications and 4 squarings.
    #[inline(always)]
    fn dbl(&self, p: &Ed<F::E>) -> Ed<F::E> {
        self.point(&self.dbl_terms(p))
    }

    /// `2p` with its `T` (one multiplication more), for an addition next.
    #[inline(always)]
    fn dbl_ext(&self, p: &Ed<F::E>) -> EdExt<F::E> {
        self.point_ext(&self.dbl_terms(p))
    }

    /// The doubling's `E, F, G, H` (dbl-2008-hwcd, a = 1).
    #[inline(always)]
    fn dbl_terms(&self, p: &Ed<F::E>) -> [F::E; 4] {
        let m = self.m;
        let a = m.sqr(&p.x);
        let b = m.sqr(&p.y);
        let zz = m.sqr(&p.z);
        let c = m.add(&zz, &zz);
        let e = m.sub(&m.sub(&m.sqr(&m.add(&p.x, &p.y)), &a), &b);
        let g = m.add(&a, &b);
        [e, m.sub(&g, &c), g, m.sub(&a, &b)]
    }

    /// `p + q` for `q` with `z = 1`, in projective coordinates: 7
    /// multiplications.
    #[inline(always)]
    fn add_affine(&self, p: &EdExt<F::E>, q: &EdAffine<F::E>) -> Ed<F::E> {
        self.point(&self.add_terms(p, &q.x, &q.y, p.p.z, self.m.mul(&p.t, &q.dxy)))
    }

    /// `p + q`, both extended (stage 1's table).
    fn add(&self, p: &EdExt<F::E>, q: &EdExt<F::E>) -> EdExt<F::E> {
        let m = self.m;
        self.point_ext(&self.add_terms(p, &q.p.x, &q.p.y, m.mul(&p.p.z, &q.p.z), m.mul(&m.mul(&p.t, &q.t), &self.d)))
    }

    /// The addition's `E, F, G, H` (add-2008-hwcd, a = 1) for `p + (x : y)`,
    /// given `zz = Z_p Z_q` and `c = d T_p T_q`.
    #[inline(always)]
    fn add_terms(&self, p: &EdExt<F::E>, x: &F::E, y: &F::E, zz: F::E, c: F::E) -> [F::E; 4] {
        let m = self.m;
        let a = m.mul(&p.p.x, x);
        let b = m.mul(&p.p.y, y);
        let e = m.sub(&m.sub(&m.mul(&m.add(&p.p.x, &p.p.y), &m.add(x, y)), &a), &b);
        [e, m.sub(&zz, &c), m.add(&zz, &c), m.sub(&b, &a)]
    }

    /// `[k](x, y)` for the scalar whose signed window digits are `digits`
    /// (most significant first); `Err` from `stop`, which is asked every
    /// [`CHECK_BITS`] digits, or the gcd of a failed inversion.
    fn mul(&self, (x, y): &(F::E, F::E), digits: &[i8], stop: &dyn Fn() -> Result<(), Halt>) -> Result<Result<Ed<F::E>, BigUint>, Halt> {
        let m = self.m;
        // The odd multiples 1p, 3p, ..., (2^(WINDOW - 1) - 1)p, with z = 1.
        let one = EdExt { p: Ed { x: *x, y: *y, z: m.one() }, t: m.mul(x, y) };
        let twice = self.dbl_ext(&one.p);
        let mut odd = vec![one];
        for i in 1..1 << (WINDOW - 2) {
            odd.push(self.add(&odd[i - 1], &twice));
        }
        let mut zs: Vec<F::E> = odd.iter().map(|q| q.p.z).collect();
        if let Err(g) = m.batch_inv(&mut zs, &mut Vec::new()) {
            return Ok(Err(g));
        }
        let zero = m.zero();
        let table: Vec<[EdAffine<F::E>; 2]> = odd
            .iter()
            .zip(&zs)
            .map(|(q, zi)| {
                let (x, y) = (m.mul(&q.p.x, zi), m.mul(&q.p.y, zi));
                let dxy = m.mul(&m.mul(&x, &y), &self.d);
                [EdAffine { x, y, dxy }, EdAffine { x: m.sub(&zero, &x), y, dxy: m.sub(&zero, &dxy) }]
            })
            .collect();
        let entry = |digit: i8| &table[usize::from(digit.unsigned_abs() / 2)][usize::from(digit < 0)];
        let Some((&first, rest)) = digits.split_first() else { return Ok(Ok(Ed { x: zero, y: m.one(), z: m.one() })) };
        let start = entry(first);
        let mut q = Ed { x: start.x, y: start.y, z: m.one() };
        for (i, &digit) in rest.iter().enumerate() {
            q = if digit == 0 { self.dbl(&q) } else { self.add_affine(&self.dbl_ext(&q), entry(digit)) };
            if (i as u64).is_multiple_of(CHECK_BITS) {
                stop()?;
            }
        }
        Ok(Ok(q))
    }
}

/// The starting point `(x, y)` and `d` of the Z/12 Edwards curve made from
/// `[k](-2, 4)` on `v^2 = u^3 - 12u` (`k >= 2`), or the gcd of a failed
/// inversion: with `(u, v) = [k](-2, 4)`, `d1 = v^2 + 12u^2`,
/// `d2 = v^2 - 4u^2`, `w = u^2 (u^2 + 12)^2`:
/// `x = 8 u^2 v (u^2 + 12) / ((v^2 + 4u^2) d1)`, `y = (w - d1 d2) / (w + d1 d2)`,
/// and `d = (x^2 + y^2 - 1) / (x^2 y^2)` puts the point on its curve. (This is
/// Montgomery's Z/12 family, `A + 2` a square times `B`, in Edwards form.)
fn z12_curve<F: Field>(m: &F, k: u64) -> Result<StartingCurve<F::E>, BigUint> {
    let (u, v) = z12_multiple(m, k)?;
    let c12 = m.of_u64(12);
    let uu = m.sqr(&u);
    let vv = m.sqr(&v);
    let uu4 = m.add(&m.add(&uu, &uu), &m.add(&uu, &uu));
    let d1 = m.add(&vv, &m.mul(&c12, &uu));
    let d2 = m.sub(&vv, &uu4);
    let s = m.add(&uu, &c12);
    let w = m.mul(&uu, &m.sqr(&s));
    let x_num = m.mul(&m.of_u64(8), &m.mul(&m.mul(&uu, &v), &s));
    let x_den = m.mul(&m.add(&vv, &uu4), &d1);
    let d12 = m.mul(&d1, &d2);
    let (y_num, y_den) = (m.sub(&w, &d12), m.add(&w, &d12));
    let inv = m.inv(&m.mul(&x_den, &y_den))?;
    let x = m.mul(&m.mul(&x_num, &y_den), &inv);
    let y = m.mul(&m.mul(&y_num, &x_den), &inv);
    let (xx, yy) = (m.sqr(&x), m.sqr(&y));
    let xxyy = m.mul(&xx, &yy);
    let d = m.mul(&m.sub(&m.add(&xx, &yy), &m.one()), &m.inv(&xxyy)?);
    Ok(((x, y), d))
}

/// `[k](-2, 4)` on `v^2 = u^3 - 12u`, in Jacobian coordinates with one
/// inversion at the end.
fn z12_multiple<F: Field>(m: &F, k: u64) -> Result<(F::E, F::E), BigUint> {
    let c12 = m.of_u64(12);
    let (bx, by) = (m.sub(&m.zero(), &m.of_u64(2)), m.of_u64(4));
    let (mut x, mut y, mut z) = (bx, by, m.one());
    let twice = |a: &F::E| m.add(a, a);
    for i in (0..63 - k.leading_zeros()).rev() {
        // dbl-2007-bl, a = -12.
        let (xx, yy, zz) = (m.sqr(&x), m.sqr(&y), m.sqr(&z));
        let yyyy = m.sqr(&yy);
        let s = twice(&m.sub(&m.sub(&m.sqr(&m.add(&x, &yy)), &xx), &yyyy));
        let mm = m.sub(&m.add(&twice(&xx), &xx), &m.mul(&c12, &m.sqr(&zz)));
        let t = m.sub(&m.sqr(&mm), &twice(&s));
        let y8 = twice(&twice(&twice(&yyyy)));
        let z2 = m.sub(&m.sub(&m.sqr(&m.add(&y, &z)), &yy), &zz);
        (x, y, z) = (t, m.sub(&m.mul(&mm, &m.sub(&s, &t)), &y8), z2);
        if (k >> i) & 1 == 1 {
            // madd-2007-bl.
            let z1z1 = m.sqr(&z);
            let u2 = m.mul(&bx, &z1z1);
            let s2 = m.mul(&m.mul(&by, &z), &z1z1);
            let h = m.sub(&u2, &x);
            let hh = m.sqr(&h);
            let i4 = twice(&twice(&hh));
            let j = m.mul(&h, &i4);
            let r = twice(&m.sub(&s2, &y));
            let vv = m.mul(&x, &i4);
            let x3 = m.sub(&m.sub(&m.sqr(&r), &j), &twice(&vv));
            let y3 = m.sub(&m.mul(&r, &m.sub(&vv, &x3)), &twice(&m.mul(&y, &j)));
            let z3 = m.sub(&m.sub(&m.sqr(&m.add(&z, &h)), &z1z1), &hh);
            (x, y, z) = (x3, y3, z3);
        }
    }
    let zi = m.inv(&z)?;
    let zi2 = m.sqr(&zi);
    Ok((m.mul(&x, &zi2), m.mul(&y, &m.mul(&zi2, &zi))))
}

#[derive(Clone, Copy)]
struct Point<E> {
    x: E,
    z: E,
}

struct Curve<'m, F: Field> {
    m: &'m F,
    /// `(A + 2) / 4`.
    a24: F::E,
}

impl<F: Field> Curve<'_, F> {
    #[inline(always)]
    fn dbl(&self, p: &Point<F::E>) -> Point<F::E> {
        let m = self.m;
        let ss = m.sqr(&m.add(&p.x, &p.z));
        let dd = m.sqr(&m.sub(&p.x, &p.z));
        let t = m.sub(&ss, &dd);
        Point { x: m.mul(&ss, &dd), z: m.mul(&t, &m.add(&dd, &m.mul(&self.a24, &t))) }
    }

    /// `p + q` given `p - q = (x_diff : 1)`.
    #[inline(always)]
    fn add_unit(&self, p: &Point<F::E>, q: &Point<F::E>, x_diff: &F::E) -> Point<F::E> {
        let m = self.m;
        let u = m.mul(&m.sub(&p.x, &p.z), &m.add(&q.x, &q.z));
        let v = m.mul(&m.add(&p.x, &p.z), &m.sub(&q.x, &q.z));
        Point { x: m.sqr(&m.add(&u, &v)), z: m.mul(x_diff, &m.sqr(&m.sub(&u, &v))) }
    }

    /// `p + q` given `p - q = diff`.
    #[inline(always)]
    fn add(&self, p: &Point<F::E>, q: &Point<F::E>, diff: &Point<F::E>) -> Point<F::E> {
        let m = self.m;
        let u = m.mul(&m.sub(&p.x, &p.z), &m.add(&q.x, &q.z));
        let v = m.mul(&m.add(&p.x, &p.z), &m.sub(&q.x, &q.z));
        Point { x: m.mul(&diff.z, &m.sqr(&m.add(&u, &v))), z: m.mul(&diff.x, &m.sqr(&m.sub(&u, &v))) }
    }

    /// `[k](x : 1)` by the Montgomery ladder (`k >= 1`).
    fn mul_small(&self, x: &F::E, k: u64) -> Point<F::E> {
        let base = Point { x: *x, z: self.m.one() };
        let mut r0 = base;
        let mut r1 = self.dbl(&base);
        for i in (0..63 - k.leading_zeros()).rev() {
            if (k >> i) & 1 == 1 {
                r0 = self.add_unit(&r1, &r0, x);
                r1 = self.dbl(&r1);
            } else {
                r1 = self.add_unit(&r0, &r1, x);
                r0 = self.dbl(&r0);
            }
        }
        r0
    }
}

/// A curve's outcome: a divisor of `n` that is neither 1 nor `n`, or none.
type Found = Option<BigUint>;

/// Stage 1 and stage 2 of the curve (or the lanes of curves) through `start`
/// with parameter `d`.
fn stages<F: Field>(m: &F, start: &(F::E, F::E), d: F::E, plan: &Plan, stop: &dyn Fn() -> Result<(), Halt>) -> Result<Found, Halt> {
    let n = m.modulus();
    let edwards = Edwards { m, d };
    let q = match edwards.mul(start, &plan.digits, stop)? {
        Ok(q) => q,
        Err(g) => return Ok(proper(g, n)),
    };
    // The neutral element is (0, 1): z - y has no inverse exactly when
    // gcd(z - y, n) is not 1, so the inversion is the end-of-stage-1 gcd.
    // Stage 2 runs on the Montgomery form, u = (1 + y) / (1 - y) and
    // (A + 2) / 4 = 1 / (1 - d).
    let (zmy, zpy) = (m.sub(&q.z, &q.y), m.add(&q.z, &q.y));
    let mut both = [zmy, m.sub(&m.one(), &d)];
    if let Err(g) = m.batch_inv(&mut both, &mut Vec::new()) {
        return Ok(proper(g, n));
    }
    let curve = Curve { m, a24: both[1] };
    stage2(&curve, &m.mul(&zpy, &both[0]), plan, stop)
}

fn stage2<F: Field>(curve: &Curve<'_, F>, xq: &F::E, plan: &Plan, stop: &dyn Fn() -> Result<(), Halt>) -> Result<Found, Halt> {
    let m = curve.m;
    let n = m.modulus();
    let mut scratch = Vec::new();
    // Baby steps: the odd multiples [j]Q, j < D/2, those prime to D kept.
    let q = Point { x: *xq, z: m.one() };
    let q2 = curve.dbl(&q);
    // [j]Q and [j + 2]Q.
    let (mut this, mut next) = (q, curve.add_unit(&q2, &q, xq));
    let mut kept: Vec<Point<F::E>> = Vec::with_capacity(babies().len());
    let mut wanted = babies().iter().peekable();
    for j in (1..D / 2).step_by(2) {
        if wanted.next_if_eq(&&j).is_some() {
            kept.push(this);
        }
        let after = curve.add(&next, &q2, &this);
        this = next;
        next = after;
    }
    let mut zs: Vec<F::E> = kept.iter().map(|p| p.z).collect();
    if let Err(g) = m.batch_inv(&mut zs, &mut scratch) {
        return Ok(proper(g, n));
    }
    let bx: Vec<F::E> = kept.iter().zip(&zs).map(|(p, zi)| m.mul(&p.x, zi)).collect();

    // Giant steps [mD]Q from m_lo on, normalised a batch at a time.
    let g = curve.mul_small(xq, D);
    let mut a = curve.mul_small(xq, plan.m_lo * D);
    let mut b = curve.mul_small(xq, (plan.m_lo + 1) * D);
    let mut acc = m.one();
    let mut xs: Vec<F::E> = Vec::with_capacity(GIANT_BATCH);
    let mut zs: Vec<F::E> = Vec::with_capacity(GIANT_BATCH);
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
    Ok(m.factor_in(&acc))
}

/// One curve (the Z/12 Edwards curve of `[k](-2, 4)`, `k >= 2`) through both
/// stages.
fn curve<const L: usize>(m: &MontN<L>, k: u64, plan: &Plan, stop: &dyn Fn() -> Result<(), Halt>) -> Result<Found, Halt> {
    match z12_curve(m, k) {
        Ok((start, d)) => stages(m, &start, d, plan, stop),
        Err(g) => Ok(proper(g, m.modulus())),
    }
}

/// The curves of `[k](-2, 4)` for the [`LANES`] `k` from `first_k` on, run
/// side by side: the curves are made one by one on `m`, then run on the
/// lanes of `n`'s width.
#[cfg(target_arch = "x86_64")]
fn lanes_from<const L: usize>(m: &MontN<L>, first_k: u64, plan: &Plan, stop: &dyn Fn() -> Result<(), Halt>) -> Result<Found, Halt> {
    let n = m.modulus();
    let mut made: Vec<[BigUint; 3]> = Vec::with_capacity(LANES);
    for k in first_k..first_k + LANES as u64 {
        match z12_curve(m, k) {
            Ok(((x, y), d)) => made.push([m.to_big(&x), m.to_big(&y), m.to_big(&d)]),
            Err(g) => {
                if let Some(f) = proper(g, n) {
                    return Ok(Some(f));
                }
            }
        }
    }
    // A curve that could not be made (its gcd was n: not seen in practice)
    // leaves its lane to a copy of another.
    let Some(first) = made.first().cloned() else { return Ok(None) };
    made.resize(LANES, first);
    lanes_of_width(n, &made, plan, stop)
}

#[cfg(target_arch = "x86_64")]
fn lanes_of_width(n: &BigUint, made: &[[BigUint; 3]], plan: &Plan, stop: &dyn Fn() -> Result<(), Halt>) -> Result<Found, Halt> {
    macro_rules! widths {
        ($($w:literal)*) => {
            match n.bits().div_ceil(52) {
                $($w => lanes::<$w>(n, made, plan, stop),)*
                _ => Ok(None),
            }
        };
    }
    widths!(3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20)
}

#[cfg(target_arch = "x86_64")]
fn lanes<const N: usize>(n: &BigUint, made: &[[BigUint; 3]], plan: &Plan, stop: &dyn Fn() -> Result<(), Halt>) -> Result<Found, Halt> {
    let Some(m) = MontV::<N>::new(n) else { return Ok(None) };
    let part = |i: usize| m.to_mont(&std::array::from_fn(|lane| made[lane][i].clone()));
    stages(&m, &(part(0), part(1)), part(2), plan, stop)
}

/// How far a level got.
pub enum LevelOutcome {
    Found(BigUint),
    /// Every curve ran without a factor.
    Exhausted,
}

/// How curves run: one at a time on [`MontN`], or eight side by side on
/// [`MontV`] where the CPU has AVX-512 IFMA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Engine {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Lanes,
}

impl Engine {
    /// Lanes where the CPU has them, unless `CRUNCH_ECM_LANES=0` says
    /// otherwise (benchmarks compare the two).
    fn best() -> Engine {
        static BEST: OnceLock<Engine> = OnceLock::new();
        *BEST.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            if super::mpv::supported() && std::env::var("CRUNCH_ECM_LANES").as_deref() != Ok("0") {
                return Engine::Lanes;
            }
            Engine::Scalar
        })
    }

    /// Curves run at once by one thread.
    fn batch(self) -> u32 {
        match self {
            Engine::Scalar => 1,
            #[cfg(target_arch = "x86_64")]
            Engine::Lanes => LANES as u32,
        }
    }
}

/// Runs `level.curves` curves (rounded up to a whole batch of the engine) on
/// `n` (odd, composite, 129 to 1,024 bits), the first made from `first_k`
/// (the multiple of (-2, 4) behind a curve, see [`z12_curve`]), in parallel;
/// `progress(curves_done)` after each batch.
pub fn run_level(n: &BigUint, level: &Level, first_k: u64, ctl: &Control, progress: &(dyn Fn(u32) + Sync)) -> Result<LevelOutcome, Stop> {
    run_level_on(Engine::best(), n, level, first_k, ctl, progress)
}

fn run_level_on(engine: Engine, n: &BigUint, level: &Level, first_k: u64, ctl: &Control, progress: &(dyn Fn(u32) + Sync)) -> Result<LevelOutcome, Stop> {
    macro_rules! widths {
        ($($l:literal)*) => {
            match n.bits().div_ceil(64) {
                $($l => run_width::<$l>(engine, n, level, first_k, ctl, progress),)*
                _ => Ok(LevelOutcome::Exhausted),
            }
        };
    }
    widths!(3 4 5 6 7 8 9 10 11 12 13 14 15 16)
}

/// The widest number [`run_level`] takes.
pub const MAX_BITS: u64 = 1024;

fn run_width<const L: usize>(engine: Engine, n: &BigUint, level: &Level, first_k: u64, ctl: &Control, progress: &(dyn Fn(u32) + Sync)) -> Result<LevelOutcome, Stop> {
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
    let batch = engine.batch();
    let run = |k: u64| match engine {
        Engine::Scalar => curve(&m, k, &plan, &stop),
        #[cfg(target_arch = "x86_64")]
        Engine::Lanes => lanes_from(&m, k, &plan, &stop),
    };
    let outcome = (0..level.curves.div_ceil(batch) as u64).into_par_iter().find_map_any(|c| match run(first_k + c * u64::from(batch)) {
        Ok(Some(f)) => {
            abandon.store(true, Ordering::Relaxed);
            Some(Ok(f))
        }
        Ok(None) => {
            progress(done.fetch_add(batch, Ordering::Relaxed) + batch);
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

/// One batch of curves at `b1` on `n` from the curve of `k` on (benchmarks
/// and the per-curve comparison with GMP-ECM): how many curves ran, and the
/// factor they found, if any.
pub fn one_batch(n: &BigUint, b1: u64, k: u64) -> (u32, Option<BigUint>) {
    let engine = Engine::best();
    let level = Level { digits: 0, b1, curves: 1 };
    match run_level_on(engine, n, &level, k, &Control::unlimited(), &|_| {}) {
        Ok(LevelOutcome::Found(f)) => (engine.batch(), Some(f)),
        _ => (engine.batch(), None),
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
    fn signed_window_digits_give_back_the_scalar() {
        for k in [1u64, 2, 31, 32, 33, 63, 64, 65, 0xdead_beef, u64::MAX] {
            let digits = signed_window(&BigUint::from(k), WINDOW);
            assert!(digits[0] > 0);
            let value = digits.iter().fold(0i128, |acc, &d| 2 * acc + i128::from(d));
            assert_eq!(value, i128::from(k));
            for (i, &d) in digits.iter().enumerate().filter(|(_, &d)| d != 0) {
                assert!(d % 2 != 0 && d.unsigned_abs() < 1 << (WINDOW - 1));
                assert!(digits[i + 1..].iter().take(WINDOW as usize - 1).all(|&e| e == 0));
            }
        }
        let plan = plan(11_000, &Control::unlimited()).expect("unlimited");
        let scalar: BigUint = super::super::ecm::stage1_scalars(11_000).into_iter().map(BigUint::from).product();
        let mut back = num_bigint::BigInt::from(0);
        for &d in &plan.digits {
            back = back * 2 + d;
        }
        assert_eq!(back, num_bigint::BigInt::from(scalar));
    }

    /// Edwards stage 1 and the Montgomery ladder agree on `[k]P` (through
    /// `u = (1 + y) / (1 - y)`), and the curve is the one stage 2 uses.
    fn edwards_matches_montgomery<const L: usize>(n: &BigUint) {
        let m = MontN::<L>::new(n).expect("odd");
        for k in [2u64, 7, 1 << 40] {
            let (start, d) = z12_curve(&m, k).expect("no factor of n shows up");
            let (xx, yy) = (m.sqr(&start.0), m.sqr(&start.1));
            assert_eq!(m.add(&xx, &yy), m.add(&m.one(), &m.mul(&d, &m.mul(&xx, &yy))), "on the curve");
            let edwards = Edwards { m: &m, d };
            let mont = Curve { m: &m, a24: m.inv(&m.sub(&m.one(), &d)).expect("invertible") };
            let u_of = |q: &Ed<[u64; L]>| m.mul(&m.add(&q.z, &q.y), &m.inv(&m.sub(&q.z, &q.y)).expect("invertible"));
            let u0 = u_of(&Ed { x: start.0, y: start.1, z: m.one() });
            for scalar in [3u64, 1000, 0xdead_beef_1234, u64::MAX] {
                let digits = signed_window(&BigUint::from(scalar), WINDOW);
                let q = match edwards.mul(&start, &digits, &|| Ok(())) {
                    Ok(Ok(q)) => q,
                    _ => panic!("no stop, no factor"),
                };
                let r = mont.mul_small(&u0, scalar);
                let ur = m.mul(&r.x, &m.inv(&r.z).expect("invertible"));
                assert_eq!(m.to_big(&u_of(&q)), m.to_big(&ur), "k = {k}, scalar = {scalar}");
            }
        }
    }

    #[test]
    fn edwards_stage_one_matches_the_montgomery_ladder() {
        edwards_matches_montgomery::<5>(&(prime("115792089237316195423570985008687907853269984665640564039457584007908834671663") * 1_000_000_007u32));
        let q = prime("69054429069287486672210540816423036187859288681522642757592834861726067084961693");
        edwards_matches_montgomery::<6>(&(&q * prime("17485029721327973713")));
    }

    /// Counts the points of `(A + 2) y^2 = x^3 + A x^2 + x` over F_p, the
    /// Montgomery form of the Edwards curve `d` (`A = 2 (1 + d) / (1 - d)`).
    fn group_order(p: u64, d: u64) -> u64 {
        use super::super::siqs::{inv_mod, jacobi};
        let a = 2 * (1 + d) % p * inv_mod((1 + p - d) % p, p) % p;
        let chi_b = i64::from(jacobi(a + 2, p));
        let sum: i64 = (0..p).map(|x| i64::from(jacobi(((x * x % p + a * x % p) % p * x + x) % p, p))).sum();
        (p as i64 + 1 + chi_b * sum) as u64
    }

    #[test]
    fn every_curve_has_an_order_divisible_by_12() {
        // Moduli of 3 limbs whose small prime factor p is where orders are
        // counted.
        for p in [10_007u64, 65_537, 100_003] {
            let n = BigUint::from(p) * prime("115792089237316195423570985008687907853269984665640564039457584007908834671663");
            let m = MontN::<5>::new(&n).expect("odd");
            let mut counted = 0;
            for k in 2..40 {
                let Ok((_, d)) = z12_curve(&m, k) else { continue };
                let d = (m.to_big(&d) % p).iter_u64_digits().next().unwrap_or(0);
                if d <= 1 {
                    continue;
                }
                let order = group_order(p, d);
                assert_eq!(order % 12, 0, "p = {p}, k = {k}: order {order}");
                counted += 1;
            }
            assert!(counted > 30, "{counted} curves counted mod {p}");
        }
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
        let found = (6..60).find_map(|s| one_batch(&n, 2_000, s).1);
        let f = found.expect("a factor within 54 curves");
        assert!(n.is_multiple_of(&f) && !f.is_one() && f != n);
    }

    /// The lanes run the curves the scalar code runs: stage 1 lands on the
    /// same points, and levels find the same factor or none.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn lanes_run_the_same_curves_as_one_at_a_time() {
        if !crate::factor::mpv::supported() {
            eprintln!("this CPU has no AVX-512 IFMA: the lanes are not tested here");
            return;
        }
        let p = prime("100000000003");
        let n = &p * prime("69054429069287486672210540816423036187859288681522642757592834861726067084961693");
        assert_eq!((n.bits().div_ceil(64), n.bits().div_ceil(52)), (5, 6));
        let m = MontN::<5>::new(&n).expect("odd");
        let v = MontV::<6>::new(&n).expect("odd, supported");
        let plan = plan(2_000, &Control::unlimited()).expect("unlimited");
        let no_stop = || Ok(());
        let first_k = 6;
        let mut made = Vec::new();
        let mut want = Vec::new();
        for k in first_k..first_k + LANES as u64 {
            let ((x, y), d) = z12_curve(&m, k).expect("no factor shows up making the curve");
            made.push([m.to_big(&x), m.to_big(&y), m.to_big(&d)]);
            let Ok(Ok(q)) = (Edwards { m: &m, d }).mul(&(x, y), &plan.digits, &no_stop) else { panic!("no stop, no factor") };
            want.push(m.to_big(&m.mul(&m.add(&q.z, &q.y), &m.inv(&m.sub(&q.z, &q.y)).expect("stage 1 alone finds nothing here"))));
        }
        let part = |i: usize| v.to_mont(&std::array::from_fn(|lane| made[lane][i].clone()));
        let Ok(Ok(q)) = (Edwards { m: &v, d: part(2) }).mul(&(part(0), part(1)), &plan.digits, &no_stop) else { panic!("no stop, no factor") };
        let got = v.to_big(&v.mul(&v.add(&q.z, &q.y), &v.inv(&v.sub(&q.z, &q.y)).expect("invertible")));
        assert_eq!(got.to_vec(), want);

        let mut found = 0;
        for first_k in (6..100).step_by(LANES) {
            let level = Level { digits: 15, b1: 2_000, curves: LANES as u32 };
            let outcome = |engine| match run_level_on(engine, &n, &level, first_k, &Control::unlimited(), &|_| {}).expect("unlimited") {
                LevelOutcome::Found(f) => Some(f),
                LevelOutcome::Exhausted => None,
            };
            let scalar = outcome(Engine::Scalar);
            assert_eq!(outcome(Engine::Lanes), scalar, "curves from {first_k}");
            found += usize::from(scalar == Some(p.clone()));
        }
        assert!(found > 0, "no batch of 8 curves found the 12-digit factor");
    }

    #[test]
    fn a_stopped_level_says_why() {
        let n = prime("1207418744665826110257942042212963297643078516519607888581393971612705489332791174062219625915976109");
        let ctl = Control::unlimited();
        ctl.cancel();
        assert!(matches!(run_level(&n, &LEVELS[0], 6, &ctl, &|_| {}), Err(Stop::Cancelled)));
    }
}
