//! A self-initialising quadratic sieve (SIQS, Contini 1997) with the
//! large-prime variation, for composites of [`MIN_BITS`] to [`MAX_BITS`] bits.
//!
//! At these sizes everything fits machine words: factor-base primes and roots
//! in `u32`, `A` in `u64`, the values `Q(x)/A` and `Ax + B` in `i128`. Only the
//! constant term (once per polynomial) and the final square roots use
//! arbitrary precision. Measured against the general engine (rusqsieve), whose
//! fixed costs dominate at these sizes (medians, one thread): 80 bits 1.7 ms
//! (ECM on words: 12.8), 90 bits 1.7 ms (3.0), 130 bits 20-27 ms (60),
//! 160 bits 212 ms (305), 180 bits about 1.2 s (1.4 s); at 200 bits the
//! general engine is faster (6.1 s against 7.9 s) and takes the larger
//! numbers. See `scripts/bench-factor-siqs.sh` and docs/benchmarks.md.
//!
//! Outline, for `kN` (`k` the Knuth-Schroeppel multiplier):
//! - factor base: -1, 2 and the odd primes `p` with `kN` a square mod `p`;
//! - polynomials `Q(x) = (Ax + B)^2 - kN` with `A` a product of `s` factor-base
//!   primes close to `sqrt(2kN)/M`, and `2^(s-1)` values of `B` per `A` visited
//!   in Gray-code order (each switch moves every root by one addition);
//! - sieve over `[-M, M)` with byte logarithms (primes below 30 are not sieved;
//!   the threshold allows for them), values of `Q(x)/A` checked by trial
//!   division over the roots; a cofactor below the large-prime bound makes a
//!   partial relation, two partials with the same prime a full one;
//! - Gaussian elimination over GF(2) after dropping relations with a prime no
//!   other has, then `gcd(X - Y, N)` per dependency.
//!
//! The `A` values of one round are sieved in parallel on rayon (one per pool
//! thread); the control is checked and progress (relations found / needed)
//! reported after every round, a few milliseconds apart at these sizes.

use std::collections::{HashMap, HashSet};

use num_bigint::{BigInt, BigUint};
use num_integer::Integer;
use num_traits::{One, ToPrimitive};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use super::big::{big_trial_primes as primes, rem_small, trial_magics};
use super::small::fastmod;
use crate::control::{Control, Stop};

/// The smallest and largest composites this sieve takes (bits).
pub const MIN_BITS: u64 = 60;
pub const MAX_BITS: u64 = 180;

/// Relations beyond the factor-base size: each surplus relation is a
/// dependency, and each dependency splits a semiprime with probability 1/2.
const SURPLUS: usize = 24;

/// Sieve parameters for a size.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// Factor-base size (including -1 and 2).
    pub fb_size: usize,
    /// Half-width `M` of the sieve interval `[-M, M)`.
    pub half_width: u32,
    /// Large primes up to this multiple of the largest factor-base prime.
    pub lp_mult: u32,
    /// Primes below this are not sieved (trial division still finds them);
    /// the threshold is lowered by their expected contribution instead.
    pub small_prime_limit: u32,
    /// How many bits below `log2 |Q(x)/A|` a sieve value must reach.
    pub slack_bits: f64,
}

/// Measured per size with `crunch-factor --time` on balanced semiprimes
/// (docs/benchmarks.md). A half-width of 16,384 keeps the sieve in a 32 KiB
/// L1 cache: at 160 bits it took 319 ms with 32,768 and 212 ms with 16,384.
/// Up to 100 bits a smaller interval and factor base did better still
/// (100 bits: 19.9 -> 16.7 M instructions, 4.1 -> 3.7 ms of CPU per number).
pub fn params(bits: u64) -> Params {
    // (bits, factor-base size, half-width)
    const TABLE: &[(u64, usize, u32)] = &[
        (60, 60, 4_096),
        (70, 77, 4_096),
        (80, 100, 4_096),
        (90, 136, 4_096),
        (100, 187, 4_096),
        (110, 300, 16_384),
        (120, 380, 16_384),
        (130, 480, 16_384),
        (140, 780, 16_384),
        (150, 975, 16_384),
        (160, 1_235, 16_384),
        (170, 1_550, 16_384),
        (180, 1_950, 16_384),
    ];
    let i = TABLE.iter().rposition(|r| r.0 <= bits).unwrap_or(0);
    let (b0, f0, m) = TABLE[i];
    let fb_size = match TABLE.get(i + 1) {
        Some(&(b1, f1, _)) => f0 + (f1 - f0) * (bits - b0) as usize / (b1 - b0) as usize,
        None => f0,
    };
    Params { fb_size, half_width: m, lp_mult: 30, small_prime_limit: 30, slack_bits: 0.0 }
}

/// A non-trivial factor of `n`, which must be odd, composite, not a perfect
/// power and free of prime factors below 2^16 (`big::factorize` ensures all
/// four). `Ok(None)` when `n` is outside this sieve's range or it found no
/// factor (the caller falls back to the general engine).
pub fn factor(n: &BigUint, ctl: &Control) -> Result<Option<BigUint>, Stop> {
    factor_with(n, &params(n.bits()), ctl)
}

pub fn factor_with(n: &BigUint, prm: &Params, ctl: &Control) -> Result<Option<BigUint>, Stop> {
    if !(MIN_BITS..=MAX_BITS).contains(&n.bits()) || n.is_even() {
        return Ok(None);
    }
    let k = multiplier(n);
    let kn = n * k;
    let Some(fb) = FactorBase::new(&kn, prm.fb_size) else { return Ok(None) };
    // A factor-base prime dividing n (only if trial division was skipped).
    if let Some((&p, _)) = fb.p[2..].iter().zip(&fb.magic[2..]).find(|&(&p, &magic)| rem_small(n, p, magic) == 0) {
        return Ok(Some(BigUint::from(p)));
    }
    let m = prm.half_width;
    let pmax = u64::from(*fb.p.last().unwrap_or(&3));
    let lp_bound = pmax * u64::from(prm.lp_mult.min(u32::try_from(pmax - 1).unwrap_or(u32::MAX)));
    // log2 of the largest |Q(x)/A| over the interval: M * sqrt(kN / 2).
    let kn_log2 = big_log2(&kn);
    let max_log = f64::from(m).log2() + kn_log2 / 2.0 - 0.5;
    // Expected contribution of the primes not sieved: sum over them of
    // 2 log2(p) / (p - 1) (two roots each), plus 2 for the powers of two.
    let skipped: f64 = 2.0
        + fb.p[2..]
            .iter()
            .filter(|&&p| p < prm.small_prime_limit)
            .map(|&p| 2.0 * f64::from(p).log2() / f64::from(p - 1))
            .sum::<f64>();
    let threshold = (max_log - (lp_bound as f64).log2() - skipped - prm.slack_bits).clamp(1.0, 120.0);
    let ctx = Ctx {
        kn: BigInt::from(kn.clone()),
        sieve_from: fb.p.iter().position(|&p| p >= prm.small_prime_limit).unwrap_or(fb.p.len()).max(2),
        fb,
        m,
        lp_bound,
        init: 128u8.wrapping_sub(threshold.round() as u8),
    };
    let target_log2 = (kn_log2 + 1.0) / 2.0 - f64::from(m).log2();
    let mut chooser = AChooser::new(&ctx.fb, target_log2, n);
    let threads = rayon::current_num_threads().max(1);
    let mut full: Vec<Rel> = Vec::new();
    let mut partial: HashMap<u64, Rel> = HashMap::new();
    let mut needed = ctx.fb.p.len() + SURPLUS;
    for _attempt in 0..4 {
        while full.len() < needed {
            ctl.check()?;
            let polys: Vec<APoly> = (0..threads).filter_map(|_| chooser.next(&ctx.fb)).collect();
            if polys.is_empty() {
                return Ok(None);
            }
            let found: Vec<Vec<Rel>> = polys.par_iter().map(|a| sieve_a(&ctx, a)).collect();
            for rel in found.into_iter().flatten() {
                if rel.lp == 1 {
                    full.push(rel);
                } else if let Some(first) = partial.get(&rel.lp) {
                    if first.xs != rel.xs {
                        full.push(first.combine(&rel));
                    }
                } else {
                    partial.insert(rel.lp, rel);
                }
            }
            ctl.progress(full.len() as f64 / needed as f64);
        }
        let rows: Vec<&[u32]> = full.iter().map(|r| r.factors.as_slice()).collect();
        for dep in dependencies(&rows, ctx.fb.p.len()) {
            if let Some(d) = try_dependency(n, &ctx.fb, &full, &dep) {
                return Ok(Some(d));
            }
        }
        // Only trivial dependencies (rare): gather more relations.
        needed = full.len() + SURPLUS;
    }
    Ok(None)
}

struct FactorBase {
    /// Index 0 stands for -1 and index 1 for 2; odd primes from index 2.
    p: Vec<u32>,
    /// A square root of kN modulo p.
    sqrt: Vec<u32>,
    logp: Vec<u8>,
    /// Lemire's fastmod constants: `x % p` for a 32-bit `x` with two multiplications.
    magic: Vec<u64>,
}

impl FactorBase {
    fn new(kn: &BigUint, size: usize) -> Option<Self> {
        let mut fb = FactorBase { p: vec![1, 2], sqrt: vec![0, 1], logp: vec![0, 1], magic: vec![0, 0] };
        for (&p, &magic) in primes().iter().zip(trial_magics()).skip(1) {
            if fb.p.len() >= size {
                break;
            }
            let r = u64::from(rem_small(kn, p as u32, magic));
            if r != 0 && jacobi(r, p) != 1 {
                continue;
            }
            fb.magic.push(magic);
            fb.p.push(p as u32);
            fb.sqrt.push(sqrt_mod(r, p) as u32);
            fb.logp.push((p as f64).log2().round() as u8);
        }
        (fb.p.len() >= size.min(40)).then_some(fb)
    }
}

struct Ctx {
    kn: BigInt,
    fb: FactorBase,
    /// First factor-base index that is sieved.
    sieve_from: usize,
    m: u32,
    lp_bound: u64,
    /// Sieve cells start here, so that reaching the threshold sets bit 7.
    init: u8,
}

/// One relation `X^2 = (product of the factor-base primes listed) * lp^2`
/// (mod N), where X is the product of `xs`.
#[derive(Debug, Clone)]
struct Rel {
    /// One value, or two for a pair of partials (then `xs[1] != 0`).
    xs: [u128; 2],
    /// Factor-base indices, with repetition (index 0: the sign).
    factors: Vec<u32>,
    /// The large prime (1 for none). In a combined relation it appears
    /// squared, so it enters Y once.
    lp: u64,
}

impl Rel {
    fn combine(&self, other: &Rel) -> Rel {
        let xs = [self.xs[0], other.xs[0]];
        let mut factors = self.factors.clone();
        factors.extend_from_slice(&other.factors);
        Rel { xs, factors, lp: self.lp }
    }
}

struct APoly {
    /// Below 2^72 for every size this sieve takes.
    a: u128,
    /// Factor-base indices of A's primes.
    qs: Vec<usize>,
}

/// Picks distinct values of A = q_1 ... q_s close to the target size.
struct AChooser {
    s: usize,
    /// Factor-base indices the first s - 1 primes are drawn from.
    window: (usize, usize),
    target_log2: f64,
    used: HashSet<u128>,
    rng: StdRng,
}

impl AChooser {
    fn new(fb: &FactorBase, target_log2: f64, n: &BigUint) -> Self {
        // As many primes as keeps each one near 2^11 but below the top of
        // the factor base: more primes means more B values per A.
        let top = f64::from(fb.p[fb.p.len() * 9 / 10]).log2();
        let s = ((target_log2 / 11.0).round() as usize).max((target_log2 / top).ceil() as usize).clamp(2, 16);
        let ideal = 2f64.powf(target_log2 / s as f64);
        let lo = fb.p.iter().position(|&p| f64::from(p) >= ideal / 2.0).unwrap_or(2).max(2);
        let mut hi = fb.p.iter().position(|&p| f64::from(p) > ideal * 2.0).unwrap_or(fb.p.len());
        hi = hi.max((lo + 2 * s + 4).min(fb.p.len()));
        // At least s + 3 primes to draw the first s - 1 from (the draw
        // below needs s - 1 distinct ones).
        let lo = lo.min(hi.saturating_sub(s + 3)).max(2);
        let seed = n.iter_u64_digits().fold(0x5eed_u64, |h, d| h.rotate_left(17) ^ d);
        AChooser { s, window: (lo, hi), target_log2, used: HashSet::new(), rng: StdRng::seed_from_u64(seed) }
    }

    fn next(&mut self, fb: &FactorBase) -> Option<APoly> {
        let (lo, hi) = self.window;
        for _ in 0..1000 {
            let mut qs: Vec<usize> = Vec::with_capacity(self.s);
            let mut log = 0.0;
            while qs.len() + 1 < self.s {
                let i = self.rng.gen_range(lo..hi);
                if !qs.contains(&i) {
                    qs.push(i);
                    log += f64::from(fb.p[i]).log2();
                }
            }
            // The last prime brings A closest to the target.
            let want = 2f64.powf(self.target_log2 - log);
            let j = fb.p.partition_point(|&p| f64::from(p) < want).clamp(2, fb.p.len() - 1);
            let best = [j.saturating_sub(1).max(2), j]
                .into_iter()
                .filter(|i| !qs.contains(i))
                .min_by(|&x, &y| (f64::from(fb.p[x]) - want).abs().total_cmp(&(f64::from(fb.p[y]) - want).abs()));
            let Some(last) = best else { continue };
            qs.push(last);
            let a: u128 = qs.iter().map(|&i| u128::from(fb.p[i])).product();
            if ((a as f64).log2() - self.target_log2).abs() > 1.0 || !self.used.insert(a) {
                continue;
            }
            qs.sort_unstable();
            return Some(APoly { a, qs });
        }
        None
    }
}

/// Sieves every B polynomial of one A; returns the relations found.
fn sieve_a(ctx: &Ctx, ap: &APoly) -> Vec<Rel> {
    let fb = &ctx.fb;
    let nf = fb.p.len();
    let s = ap.qs.len();
    let a = ap.a;
    let mut bl = vec![0u128; s];
    for (l, &qi) in ap.qs.iter().enumerate() {
        let q = u64::from(fb.p[qi]);
        let al = a / u128::from(q);
        let inv = inv_mod((al % u128::from(q)) as u64, q);
        let mut g = u64::from(fb.sqrt[qi]) * inv % q;
        if g > q / 2 {
            g = q - g;
        }
        bl[l] = al * u128::from(g);
    }
    let mut b: i128 = bl.iter().map(|&x| x as i128).sum();
    const NONE: u32 = u32::MAX;
    let mut r1 = vec![NONE; nf];
    let mut r2 = vec![NONE; nf];
    // deltas[l * nf + j] = 2 B_l / A mod p_j: how far B_l's sign flip moves the roots.
    let mut deltas = vec![0u32; (s - 1) * nf];
    for j in 2..nf {
        let p = u64::from(fb.p[j]);
        let am = rem_u128(a, p);
        if am == 0 {
            continue;
        }
        let ainv = inv_mod(am, p);
        for l in 0..s - 1 {
            deltas[l * nf + j] = (2 * rem_u128(bl[l], p) % p * ainv % p) as u32;
        }
        let bm = b.rem_euclid(i128::from(p)) as u64;
        let t = u64::from(fb.sqrt[j]);
        let shift = u64::from(ctx.m) % p;
        r1[j] = ((ainv * ((t + p - bm) % p) + shift) % p) as u32;
        r2[j] = ((ainv * ((2 * p - t - bm) % p) + shift) % p) as u32;
    }
    let len = 2 * ctx.m as usize;
    let mut sieve = vec![0u8; len];
    let mut rels = Vec::new();
    let mut scratch = Vec::with_capacity(32);
    for i in 0..1usize << (s - 1) {
        if i > 0 {
            // Gray code: flip the sign of B_v.
            let v = i.trailing_zeros() as usize;
            let negative = ((i ^ (i >> 1)) >> v) & 1 == 1;
            let d = &deltas[v * nf..(v + 1) * nf];
            if negative {
                b -= 2 * bl[v] as i128;
            } else {
                b += 2 * bl[v] as i128;
            }
            for j in 2..nf {
                if r1[j] == NONE {
                    continue;
                }
                let (p, dj) = (fb.p[j], d[j]);
                if negative {
                    r1[j] = add_mod(r1[j], dj, p);
                    r2[j] = add_mod(r2[j], dj, p);
                } else {
                    r1[j] = add_mod(r1[j], p - dj, p);
                    r2[j] = add_mod(r2[j], p - dj, p);
                }
            }
        }
        let bb = BigInt::from(b);
        let c = (&bb * &bb - &ctx.kn) / BigInt::from(a);
        let Some(c) = c.to_i128() else { continue };
        sieve.fill(ctx.init);
        // A's primes have roots u32::MAX: past the end, so never sieved.
        for j in ctx.sieve_from..nf {
            let p = fb.p[j] as usize;
            let lg = fb.logp[j];
            sieve_root(&mut sieve, r1[j] as usize, p, lg);
            if r2[j] != r1[j] {
                sieve_root(&mut sieve, r2[j] as usize, p, lg);
            }
        }
        // Candidates have bit 7 set; 64 cells are ORed at once (vectorised)
        // and only the rare blocks with a candidate are looked at closely.
        for (blk, block) in sieve.chunks_exact(64).enumerate() {
            if block.iter().fold(0u8, |acc, &v| acc | v) & 0x80 == 0 {
                continue;
            }
            for (i, &v) in block.iter().enumerate() {
                if v & 0x80 == 0 {
                    continue;
                }
                let idx = blk * 64 + i;
                if let Some(rel) = check(ctx, ap, b, c, &r1, &r2, idx, &mut scratch) {
                    rels.push(rel);
                }
            }
        }
    }
    rels
}

/// Adds `lg` to every `p`-th cell from `start`, four cells per step while
/// they fit (the sieve's hot loop).
#[inline(always)]
fn sieve_root(sieve: &mut [u8], start: usize, p: usize, lg: u8) {
    let mut k = start;
    while let Some(c) = sieve.get_mut(k..k + 4 * p) {
        c[0] = c[0].wrapping_add(lg);
        c[p] = c[p].wrapping_add(lg);
        c[2 * p] = c[2 * p].wrapping_add(lg);
        c[3 * p] = c[3 * p].wrapping_add(lg);
        k += 4 * p;
    }
    while let Some(c) = sieve.get_mut(k) {
        *c = c.wrapping_add(lg);
        k += p;
    }
}

/// Trial division of `Q(x)/A` at sieve index `idx` over the factor base.
#[allow(clippy::too_many_arguments)]
fn check(ctx: &Ctx, ap: &APoly, b: i128, c: i128, r1: &[u32], r2: &[u32], idx: usize, factors: &mut Vec<u32>) -> Option<Rel> {
    let fb = &ctx.fb;
    let x = idx as i128 - i128::from(ctx.m);
    let a = ap.a as i128;
    let v = a.checked_mul(x * x)?.checked_add(2 * b * x)?.checked_add(c)?;
    if v == 0 {
        return None;
    }
    factors.clear();
    if v < 0 {
        factors.push(0);
    }
    let mut u = v.unsigned_abs();
    let tz = u.trailing_zeros();
    factors.extend(std::iter::repeat_n(1, tz as usize));
    u >>= tz;
    for &qi in &ap.qs {
        // A's own primes: once for A, and however often they divide Q(x)/A.
        factors.push(qi as u32);
        divide_out(&mut u, fb.p[qi], qi as u32, factors);
    }
    let pos = idx as u32;
    // A's primes have roots u32::MAX, which no remainder equals.
    for j in 2..fb.p.len() {
        let p = fb.p[j];
        let r = fastmod(pos, fb.magic[j], p);
        if r == r1[j] || r == r2[j] {
            divide_out(&mut u, p, j as u32, factors);
        }
    }
    let lp = u64::try_from(u).ok().filter(|&u| u <= ctx.lp_bound)?;
    let axb = a * x + b;
    Some(Rel { xs: [axb.unsigned_abs(), 0], factors: factors.clone(), lp })
}

/// Divides `p` out of `u` as often as it goes, recording index `j` each time
/// (64-bit division once `u` fits: much cheaper than 128-bit).
fn divide_out(u: &mut u128, p: u32, j: u32, factors: &mut Vec<u32>) {
    if let Ok(mut w) = u64::try_from(*u) {
        let p = u64::from(p);
        while w % p == 0 {
            w /= p;
            factors.push(j);
        }
        *u = u128::from(w);
    } else {
        let p = u128::from(p);
        while (*u).is_multiple_of(p) {
            *u /= p;
            factors.push(j);
        }
    }
}

/// Sets of rows whose factor-exponent vectors sum to zero mod 2. Rows with
/// a column no other row has cannot be in one and are dropped first
/// (repeatedly); then Gaussian elimination on bit rows, each carrying the
/// history of its combination. Branch-free row updates: whether a row holds
/// the pivot's bit is a coin toss the branch predictor cannot learn.
fn dependencies(rows: &[&[u32]], ncols: usize) -> Vec<Vec<usize>> {
    let cw0 = ncols.div_ceil(64);
    // Exponent parities as bit rows (toggling leaves the odd ones set).
    let mut bits = vec![0u64; rows.len() * cw0];
    for (r, row) in bits.chunks_exact_mut(cw0).zip(rows) {
        for &j in row.iter() {
            r[j as usize / 64] ^= 1 << (j % 64);
        }
    }
    let cols: Vec<Vec<usize>> = bits.chunks_exact(cw0).map(set_bits).collect();
    let mut count = vec![0u32; ncols];
    for &j in cols.iter().flatten() {
        count[j] += 1;
    }
    let mut alive = vec![true; rows.len()];
    let mut changed = true;
    while changed {
        changed = false;
        for (i, c) in cols.iter().enumerate() {
            if alive[i] && c.iter().any(|&j| count[j] == 1) {
                alive[i] = false;
                changed = true;
                for &j in c {
                    count[j] -= 1;
                }
            }
        }
    }
    let keep: Vec<usize> = (0..rows.len()).filter(|&i| alive[i]).collect();
    let mut colmap = vec![usize::MAX; ncols];
    let mut nc = 0;
    for &j in keep.iter().flat_map(|&i| &cols[i]) {
        if colmap[j] == usize::MAX {
            colmap[j] = nc;
            nc += 1;
        }
    }
    let nrows = keep.len();
    let cw = nc.div_ceil(64);
    let stride = cw + nrows.div_ceil(64);
    // Rows of a fixed width (a power of two): the row operation compiles to
    // straight-line vector code, which the elimination is made of.
    match stride {
        0..=8 => eliminate::<8>(&cols, &keep, &colmap, nc, cw),
        9..=16 => eliminate::<16>(&cols, &keep, &colmap, nc, cw),
        17..=32 => eliminate::<32>(&cols, &keep, &colmap, nc, cw),
        33..=64 => eliminate::<64>(&cols, &keep, &colmap, nc, cw),
        _ => eliminate::<128>(&cols, &keep, &colmap, nc, cw),
    }
}

/// Gaussian elimination of the kept rows (column part `cw` words, then the
/// history); the rows that end empty give the dependencies, as indices into
/// the caller's rows. Rows wider than `W` words cannot occur (at 180 bits
/// they take about 62 words; the widest `W` is 128).
fn eliminate<const W: usize>(cols: &[Vec<usize>], keep: &[usize], colmap: &[usize], nc: usize, cw: usize) -> Vec<Vec<usize>> {
    let nrows = keep.len();
    if cw + nrows.div_ceil(64) > W {
        return Vec::new();
    }
    let mut mat = vec![[0u64; W]; nrows];
    for (i, (r, &orig)) in mat.iter_mut().zip(keep).enumerate() {
        for &j in &cols[orig] {
            let c = colmap[j];
            r[c / 64] |= 1 << (c % 64);
        }
        r[cw + i / 64] |= 1 << (i % 64);
    }
    let mut next = 0;
    for col in 0..nc {
        let (w, b) = (col / 64, col % 64);
        let Some(pr) = (next..nrows).find(|&r| mat[r][w] >> b & 1 == 1) else { continue };
        mat.swap(pr, next);
        let (head, tail) = mat.split_at_mut(next + 1);
        let pivot = head[next];
        for row in tail {
            let mask = 0u64.wrapping_sub(row[w] >> b & 1);
            for (x, y) in row.iter_mut().zip(&pivot) {
                *x ^= y & mask;
            }
        }
        next += 1;
    }
    mat[next..].iter().map(|r| set_bits(&r[cw..]).into_iter().map(|i| keep[i]).collect()).collect()
}

/// The indices of the set bits of a bit row, in order.
fn set_bits(r: &[u64]) -> Vec<usize> {
    let mut out = Vec::new();
    for (w, &word) in r.iter().enumerate() {
        let mut x = word;
        while x != 0 {
            out.push(w * 64 + x.trailing_zeros() as usize);
            x &= x - 1;
        }
    }
    out
}

/// `gcd(X - Y, N)` for one dependency, if it is a proper factor.
fn try_dependency(n: &BigUint, fb: &FactorBase, rels: &[Rel], dep: &[usize]) -> Option<BigUint> {
    let mut x = BigUint::one();
    let mut y = BigUint::one();
    let mut exps = vec![0u32; fb.p.len()];
    for &i in dep {
        let r = &rels[i];
        for &v in r.xs.iter().filter(|&&v| v != 0) {
            x = x * BigUint::from(v) % n;
        }
        for &f in &r.factors {
            exps[f as usize] += 1;
        }
        if r.lp != 1 {
            y = y * BigUint::from(r.lp) % n;
        }
    }
    // Small primes multiply into a word first (no modpow: most exponents are 1).
    let mut acc: u128 = 1;
    for (j, &e) in exps.iter().enumerate().skip(1) {
        if e % 2 != 0 {
            return None;
        }
        for _ in 0..e / 2 {
            if acc >= 1 << 96 {
                y = y * BigUint::from(acc) % n;
                acc = 1;
            }
            acc *= u128::from(fb.p[j]);
        }
    }
    y = y * BigUint::from(acc) % n;
    let diff = if x >= y { x - &y } else { y - &x };
    let d = diff.gcd(n);
    (!d.is_one() && d != *n).then_some(d)
}

/// The Jacobi symbol (a/n) for odd n.
pub(crate) fn jacobi(mut a: u64, mut n: u64) -> i32 {
    a %= n;
    let mut t = 1;
    while a != 0 {
        while a.is_multiple_of(2) {
            a /= 2;
            if matches!(n % 8, 3 | 5) {
                t = -t;
            }
        }
        std::mem::swap(&mut a, &mut n);
        if a % 4 == 3 && n % 4 == 3 {
            t = -t;
        }
        a %= n;
    }
    if n == 1 {
        t
    } else {
        0
    }
}

/// `x mod p` with 64-bit divisions only while `x` fits a word.
fn rem_u128(x: u128, p: u64) -> u64 {
    match u64::try_from(x) {
        Ok(w) => w % p,
        Err(_) => (x % u128::from(p)) as u64,
    }
}

fn add_mod(a: u32, b: u32, p: u32) -> u32 {
    let s = a + b;
    if s >= p {
        s - p
    } else {
        s
    }
}

fn big_log2(n: &BigUint) -> f64 {
    let bits = n.bits();
    let shift = bits.saturating_sub(64);
    (n >> shift).to_f64().unwrap_or(1.0).log2() + shift as f64
}

fn pow_mod(mut b: u64, mut e: u64, p: u64) -> u64 {
    let mut r = 1u64;
    b %= p;
    while e > 0 {
        if e & 1 == 1 {
            r = r * b % p;
        }
        b = b * b % p;
        e >>= 1;
    }
    r
}

/// The inverse of `a` modulo the prime `p` (`a` not divisible by `p`).
pub(crate) fn inv_mod(a: u64, p: u64) -> u64 {
    let (mut t, mut nt) = (0i64, 1i64);
    let (mut r, mut nr) = (p as i64, (a % p) as i64);
    while nr != 0 {
        let q = r / nr;
        (t, nt) = (nt, t - q * nt);
        (r, nr) = (nr, r - q * nr);
    }
    if t < 0 {
        t += p as i64;
    }
    t as u64
}

/// A square root of the quadratic residue `a` modulo the odd prime `p`
/// (Tonelli-Shanks; p < 2^32).
fn sqrt_mod(a: u64, p: u64) -> u64 {
    let a = a % p;
    if a == 0 {
        return 0;
    }
    if p % 4 == 3 {
        return pow_mod(a, (p + 1) / 4, p);
    }
    let (mut q, mut s) = (p - 1, 0u32);
    while q % 2 == 0 {
        q /= 2;
        s += 1;
    }
    let mut z = 2;
    while pow_mod(z, (p - 1) / 2, p) != p - 1 {
        z += 1;
    }
    let (mut m, mut c, mut t, mut r) = (s, pow_mod(z, q, p), pow_mod(a, q, p), pow_mod(a, q.div_ceil(2), p));
    while t != 1 {
        let mut i = 0;
        let mut tt = t;
        while tt != 1 {
            tt = tt * tt % p;
            i += 1;
        }
        let b = pow_mod(c, 1 << (m - i - 1), p);
        m = i;
        c = b * b % p;
        t = t * c % p;
        r = r * b % p;
    }
    r
}

/// The Knuth-Schroeppel multiplier: the small squarefree k that makes the
/// small primes divide `Q(x)` most often, net of the larger values.
fn multiplier(n: &BigUint) -> u64 {
    const KS: [u64; 30] = [1, 3, 5, 7, 11, 13, 15, 17, 19, 21, 23, 29, 31, 33, 35, 37, 39, 41, 43, 47, 51, 53, 55, 57, 59, 61, 65, 67, 69, 71];
    let primes = &primes()[..95]; // below 500
    let n8 = (n % 8u32).to_u64().unwrap_or(1);
    let residues: Vec<u64> = primes.iter().zip(trial_magics()).skip(1).map(|(&p, &magic)| u64::from(rem_small(n, p as u32, magic))).collect();
    let ln2 = std::f64::consts::LN_2;
    // The squares modulo each small prime, built by additions
    // ((x+1)^2 = x^2 + 2x + 1), then one lookup per (k, p).
    let squares: Vec<Vec<bool>> = primes
        .iter()
        .skip(1)
        .map(|&p| {
            let mut sq = vec![false; p as usize];
            let mut x2 = 0u64;
            for x in 0..p.div_ceil(2) {
                sq[x2 as usize] = true;
                x2 += 2 * x + 1;
                while x2 >= p {
                    x2 -= p;
                }
            }
            sq
        })
        .collect();
    let logs: Vec<f64> = primes.iter().skip(1).map(|&p| (p as f64).ln()).collect();
    let score = |k: u64| {
        let mut f = -0.5 * (k as f64).ln();
        f += match (k * n8) % 8 {
            1 => 2.0 * ln2,
            5 => ln2,
            _ => 0.5 * ln2,
        };
        for (((&p, &r), sq), &lp) in primes.iter().skip(1).zip(&residues).zip(&squares).zip(&logs) {
            let kr = k % p * r % p;
            if kr == 0 {
                f += lp / p as f64;
            } else if sq[kr as usize] {
                f += 2.0 * lp / (p - 1) as f64;
            }
        }
        f
    };
    KS.into_iter().map(|k| (score(k), k)).max_by(|x, y| x.0.total_cmp(&y.0)).map_or(1, |(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;
    /// The first prime above 2^bits + offset.
    fn prime_above(bits: u32, offset: u64) -> BigUint {
        let mut p = ((BigUint::one() << bits) + offset) | BigUint::one();
        while !super::super::big::is_prime_big(&p) {
            p += 2u32;
        }
        p
    }

    #[test]
    fn square_roots_modulo_primes() {
        for &p in primes().iter().take(300).skip(1) {
            for a in 1..p.min(60) {
                assert_eq!(jacobi(a, p) == 1, pow_mod(a, (p - 1) / 2, p) == 1, "({a}/{p})");
                if jacobi(a, p) == 1 {
                    let r = sqrt_mod(a, p);
                    assert_eq!(r * r % p, a, "sqrt of {a} mod {p}");
                }
                assert_eq!(a * inv_mod(a, p) % p, 1);
                assert_eq!(fastmod((a * 7919 + 13) as u32, u64::MAX / p + 1, p as u32), ((a * 7919 + 13) % p) as u32);
            }
        }
    }

    #[test]
    fn dependencies_sum_to_zero() {
        let rows: Vec<Vec<u32>> = vec![vec![0, 1], vec![1, 2], vec![0, 2], vec![3, 3], vec![1, 1, 4]];
        let refs: Vec<&[u32]> = rows.iter().map(|r| r.as_slice()).collect();
        let deps = dependencies(&refs, 5);
        assert_eq!(deps.len(), 2);
        for d in deps {
            let mut parity = [0u32; 5];
            for &i in &d {
                for &j in &rows[i] {
                    parity[j as usize] ^= 1;
                }
            }
            assert_eq!(parity, [0; 5], "{d:?}");
        }
    }

    #[test]
    fn splits_balanced_and_unbalanced_semiprimes_from_60_to_130_bits() {
        for (a, b) in [(30, 31), (40, 40), (45, 52), (50, 50), (55, 56), (60, 60), (64, 64), (36, 80)] {
            for offset in [1_000, 77_777] {
                let (p, q) = (prime_above(a, offset), prime_above(b, 3 * offset));
                let n = &p * &q;
                let d = factor(&n, &Control::unlimited()).expect("not stopped").expect("a factor");
                assert!(d == p || d == q, "{n} = {p} * {q}: got {d}");
            }
        }
    }

    #[test]
    fn sieves_on_every_thread_of_its_pool_and_reports_progress() {
        let (p, q) = (prime_above(55, 12_345), prime_above(56, 54_321));
        let n = &p * &q;
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = std::sync::Arc::clone(&seen);
        let ctl = Control::unlimited().with_progress(move |f| log.lock().expect("lock").push(f));
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().expect("pool");
        let d = pool.install(|| factor(&n, &ctl)).expect("not stopped").expect("a factor");
        assert!(d == p || d == q);
        let seen = seen.lock().expect("lock");
        assert!(seen.len() > 3 && seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
        assert!(*seen.last().unwrap_or(&0.0) >= 1.0, "{seen:?}");
    }

    #[test]
    fn the_deadline_stops_a_sieve() {
        let n = prime_above(74, 1) * prime_above(74, 99);
        let ctl = Control::unlimited().with_deadline(std::time::Instant::now() + std::time::Duration::from_millis(5));
        assert_eq!(factor(&n, &ctl), Err(Stop::TimeBudgetExceeded));
    }

    #[test]
    fn outside_its_range_it_declines() {
        let big = prime_above(92, 1) * prime_above(92, 99);
        assert_eq!(factor(&big, &Control::unlimited()), Ok(None));
        assert_eq!(factor(&BigUint::from(1_000_001u64 * 1_000_003), &Control::unlimited()), Ok(None));
    }

    #[test]
    fn a_cancelled_sieve_stops() {
        let n = prime_above(64, 1) * prime_above(64, 99);
        let ctl = Control::unlimited();
        ctl.cancel();
        assert_eq!(factor(&n, &ctl), Err(Stop::Cancelled));
    }
}
