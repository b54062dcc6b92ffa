//! pi(x), the number of primes up to x, for any x < 2^64, by the
//! combinatorial method in Gourdon's variant of Deleglise-Rivat's algorithm:
//! O(x^(2/3) / log^2 x) time, tables of O(x^(1/3) log^3 x).
//!
//! With `y = alpha_y x^(1/3)`, `z = alpha_z y` (`y <= z < sqrt(x)`,
//! [`alphas`]), the first `k = 6` primes (2 to 13) sieved by a table of one
//! period of 30030, `x* = max(x^(1/4), x / y^2)` (at most y and sqrt(x / y)),
//! and p the b-th prime (b from 1):
//!
//! `pi(x) = A - B + C + D + Phi0 + Sigma`, where
//! - `Phi0 = sum mu(n) phi(x/n, k)` over the squarefree `n <= z` with every
//!   prime factor in (13, y] (the ordinary leaves; [`phi0`]);
//! - `D = sum -mu(m) phi(x/(pm), b - 1)`, the hard leaves: `k < b <= pi(x*)`,
//!   `z < pm`, `m <= x/p^3` (so `x/(pm) >= p^2`), `lpf(m) > p`, m squarefree
//!   and y-smooth, a prime when `p > sqrt(z)`; phi from a segmented sieve of
//!   `[1, x/z)` by the primes in order, with a counter per 1,024 sieve bits
//!   ([`hard_chunk`]);
//! - `A = sum w pi(x/(pq))` over the primes `x* < p <= x^(1/3)`,
//!   `p < q <= sqrt(x/p)`, w = 1 when `x/(pq) >= y`, 2 otherwise;
//! - `C = sum -mu(m) (pi(x/(pm)) - b + 2)`, the easy leaves of the primes
//!   `k < b <= pi(x*)`: m in `(max(x/p^3, z/p), z]` (so `x/(pm) < p^2`), a
//!   prime at most y or, when `p <= sqrt(z)`, a product of two such primes
//!   above p;
//! - `B = sum pi(x/p)` over the primes `y < p <= sqrt(x)`;
//! - `Sigma`: closed forms in `pi(y)`, `pi(x^(1/3))`, `pi(sqrt(x/y))`,
//!   `pi(x*)`, `pi(sqrt(x))` and sums over the primes in `(x*, x^(1/3)]`.
//!
//! A and C need `pi(u)` for `u = x/(pm) < x/y`: from the pi table when
//! `u <= y` ([`gourdon`]), otherwise from the segmented prime count over
//! `(y, x/y]` that gives B ([`pass_chunk`]). The formulas and their bounds
//! are Gourdon's, with the corrections of Walisch's primecount (x* bounded,
//! C split at sqrt(z)).
//!
//! Both segmented passes split their range into chunks on the rayon pool.
//! The hard sieve's chunks count relative to their own start and are
//! combined in order (each leaf's missing part is the count of the sieve
//! before the chunk, the same for every leaf of one prime), so chunks run in
//! any order on any thread.

use std::sync::OnceLock;

mod gourdon;
pub use gourdon::{alphas, pi_with_alphas};

use rayon::prelude::*;

use crate::control::{Control, Stop, Tally};
use crate::primes::{self, isqrt};

/// Below this, pi(x) is a plain sieve count (faster than setting up the
/// tables).
pub const SIEVE_BELOW: u64 = 100_000_000;

/// Primes handled by the phi table: 2, 3, 5, 7, 11, 13.
const C: usize = 6;
const PRIMORIAL: u64 = 30_030;
const PHI_PRIMORIAL: u64 = 5_760;

/// Bits per sieve segment of the hard leaves (odd numbers only): 4,096 words,
/// 32 KiB, a segment spans 524,288 integers.
const SEG_WORDS: usize = 1 << 12;
const SEG_SPAN: u64 = (SEG_WORDS as u64) * 128;
/// Sieve bits per counter: 2^10.
const BLOCK_SHIFT: usize = 10;

/// `t[r]` = how many `1 <= k <= r` are prime to 30030.
fn phi_table() -> &'static [u16] {
    static T: OnceLock<Vec<u16>> = OnceLock::new();
    T.get_or_init(|| {
        let mut t = Vec::with_capacity(PRIMORIAL as usize);
        let mut acc = 0u16;
        for r in 0..PRIMORIAL {
            if r > 0 && [2, 3, 5, 7, 11, 13].iter().all(|p| r % p != 0) {
                acc += 1;
            }
            t.push(acc);
        }
        t
    })
}

/// phi(u, 6): the integers up to u with no prime factor up to 13.
fn phi_c(u: u64) -> u64 {
    u / PRIMORIAL * PHI_PRIMORIAL + u64::from(phi_table()[(u % PRIMORIAL) as usize])
}

/// The largest r with r^k <= x.
fn iroot(x: u64, k: u32) -> u64 {
    let exceeds = |r: u64| {
        let mut acc: u128 = 1;
        for _ in 0..k {
            acc *= u128::from(r);
            if acc > u128::from(x) {
                return true;
            }
        }
        false
    };
    let mut r = (x as f64).powf(1.0 / f64::from(k)) as u64;
    while r > 0 && exceeds(r) {
        r -= 1;
    }
    while !exceeds(r + 1) {
        r += 1;
    }
    r
}

/// Residues prime to 30, and how many of them are at most r.
const WHEEL: [u64; 8] = [1, 7, 11, 13, 17, 19, 23, 29];
const WHEEL_LE: [u64; 30] = {
    let mut t = [0u64; 30];
    let mut r = 0;
    while r < 30 {
        let mut i = 0;
        while i < 8 {
            if WHEEL[i] <= r as u64 {
                t[r] += 1;
            }
            i += 1;
        }
        r += 1;
    }
    t
};

/// How many integers in `[1, n]` are prime to 30: the index of the first
/// one above n in the factor table.
#[inline]
fn wheel_count(n: u64) -> usize {
    ((n / 30) * 8 + WHEEL_LE[(n % 30) as usize]) as usize
}

/// The integer prime to 30 at index i of the factor table.
#[inline]
fn wheel_number(i: usize) -> u64 {
    (i / 8) as u64 * 30 + WHEEL[i % 8]
}

/// Primes and pi up to a limit; the factor table up to another.
struct Tables {
    primes: Vec<u32>,
    /// 1 / primes[i], for quotients without a division instruction.
    inv: Vec<f64>,
    /// pi up to the limit: per 128 integers, the primes below them and a bit
    /// per odd integer (one cache access per lookup).
    pi_words: Vec<PiWord>,
    /// For the m prime to 30 up to `mu_to` ([`wheel_count`]):
    /// `mu(m) * min(lpf(m), i16::MAX)`, 0 when `mu(m) = 0` or a prime factor
    /// of m exceeds `smooth`, `i16::MAX` for 1. The least prime factor is only
    /// compared with primes up to sqrt(mu_to) < i16::MAX and with 13.
    factor: Vec<i16>,
}

impl Tables {
    /// Primes and pi up to `limit`; the factor table of the m prime to 30 up
    /// to `mu_to` (below 2^30) whose prime factors are all at most `smooth`
    /// (at most `limit`).
    fn build(limit: u64, mu_to: u64, smooth: u64, ctl: &Control) -> Result<Self, Stop> {
        debug_assert!(smooth <= limit && mu_to < 1 << 30);
        let mut pi_words = vec![PiWord { bits: 0, below: 0 }; (limit / 128 + 1) as usize];
        let mut primes = Vec::new();
        primes::for_each_prime(2, limit, ctl, |ps| {
            for &p in ps {
                primes.push(p as u32);
                if p > 2 {
                    pi_words[(p / 128) as usize].bits |= 1 << ((p % 128) / 2);
                }
            }
        })?;
        // The prime 2 is counted from the start: lookups are for n >= 2.
        let mut acc = 1u64;
        for w in &mut pi_words {
            w.below = acc;
            acc += u64::from(w.bits.count_ones());
        }
        let n = wheel_count(mu_to);
        let mut factor = vec![1i16; n];
        // The multiples p k of p with k prime to 30, at most mu_to.
        let multiples = |p: u64| (0..).map(wheel_number).take_while(move |&k| k <= mu_to / p).map(move |k| wheel_count(p * k) - 1);
        for &p in primes.iter().skip(3) {
            let p = u64::from(p);
            if p > smooth.min(mu_to) {
                break;
            }
            // Each multiple gets one more prime factor: the sign flips, and
            // the first prime to reach it is its least.
            let lpf = p.min(i16::MAX as u64) as i16;
            for i in multiples(p) {
                let v = &mut factor[i];
                *v = if v.unsigned_abs() == 1 { -*v * lpf } else { -*v };
            }
            if p * p <= mu_to {
                for i in multiples(p * p) {
                    factor[i] = 0;
                }
            }
        }
        // Primes above smooth: their multiples are not smooth.
        if smooth < mu_to {
            primes::for_each_prime(smooth + 1, mu_to, ctl, |ps| {
                for &p in ps {
                    for i in multiples(p) {
                        factor[i] = 0;
                    }
                }
            })?;
        }
        if n > 0 {
            factor[0] = i16::MAX;
        }
        let inv = primes.iter().map(|&p| 1.0 / f64::from(p)).collect();
        Ok(Tables { primes, inv, pi_words, factor })
    }

    /// pi(n) for 2 <= n <= the limit.
    #[inline]
    fn pi(&self, n: u64) -> usize {
        debug_assert!(n >= 2);
        let w = self.pi_words[(n / 128) as usize];
        // The odd integers up to n in this word: the low (n % 128 + 1) / 2 bits.
        let odd = (n % 128).div_ceil(2) as u32;
        let low = ((u128::from(w.bits) << (64 - odd)) as u64).count_ones();
        (w.below + u64::from(low)) as usize
    }

    #[inline]
    fn prime(&self, i: usize) -> u64 {
        u64::from(self.primes[i])
    }

    /// `n / primes[i]` for `n < 2^60` by a floating-point estimate (off by at
    /// most one for quotients below 2^50) and one correction: a multiplication
    /// where a 64-bit division costs several times as much.
    #[inline]
    fn div(&self, n: u64, i: usize) -> u64 {
        let q = self.prime(i);
        let mut u = (n as f64 * self.inv[i]) as u64;
        if u * q > n {
            u -= 1;
        } else if (u + 1) * q <= n {
            u += 1;
        }
        u
    }
}

#[derive(Clone, Copy)]
struct PiWord {
    /// Bit k: whether 128 i + 2k + 1 is prime.
    bits: u64,
    /// The primes below 128 i (2 counted in the first word too).
    below: u64,
}

/// The sizes of one computation (prime indexes from 0: the b-th prime of the
/// formulas is `t.prime(b - 1)`).
#[derive(Debug, Clone, Copy)]
struct Params {
    x: u64,
    y: u64,
    z: u64,
    sqrtx: u64,
    /// D's sieve covers `[0, x / z]`.
    xz: u64,
    /// pi(sqrt(z)): below it, hard leaves come with any squarefree m, from
    /// it on with a prime; C's first part ends there.
    pi_sqrtz: usize,
    /// pi(x*): D's primes and C's second part end there, A's begin.
    pi_xs: usize,
    /// Where C's first and second parts begin (`c1_lo..pi_sqrtz`,
    /// `c2_lo..pi_xs`) and A ends (`pi_xs..pi_x13`).
    c1_lo: usize,
    c2_lo: usize,
    pi_x13: usize,
}

impl Params {
    /// D's sieve runs the primes of index C..b_end.
    fn b_end(&self) -> usize {
        self.pi_xs.max(C)
    }
}

/// Seconds of one thread for pi(x) (measured: 0.04 s at 10^12, 0.55 s at
/// 10^14, 7.5 s at 10^16) and for sieving `width` numbers (2.4 s per 10^10).
fn pi_seconds(x: u64) -> f64 {
    if x < SIEVE_BELOW {
        return sieve_seconds(x);
    }
    7.5 * (x as f64 / 1e16).powf(0.57)
}

fn sieve_seconds(width: u64) -> f64 {
    width as f64 * 2.4e-10
}

/// Whether [`count`] computes the primes in `[lo, hi]` as pi(hi) - pi(lo - 1)
/// (when sieving the range would take longer than the two pi).
pub fn prefers_pi(lo: u64, hi: u64) -> bool {
    sieve_seconds(hi - lo) > pi_seconds(hi) + pi_seconds(lo.saturating_sub(1))
}

/// The number of primes in `[lo, hi]`, by the faster of the sieve
/// ([`primes::count_parallel`]) and pi(hi) - pi(lo - 1), on the rayon pool.
pub fn count(lo: u64, hi: u64, ctl: &Control) -> Result<u64, Stop> {
    if lo > hi {
        return Ok(0);
    }
    if !prefers_pi(lo, hi) {
        // Enough pieces for balance and steady progress, few enough that each
        // piece's set-up (sieving primes) stays negligible.
        let pieces = (rayon::current_num_threads() * 4).max(((hi - lo) / 2_000_000_000) as usize).min(4096);
        return primes::count_parallel(lo, hi, pieces, ctl);
    }
    let (below, all) = (pi_seconds(lo.saturating_sub(1)), pi_seconds(hi));
    let split = below / (below + all);
    let before = if lo == 0 { 0 } else { pi(lo - 1, &ctl.part(0.0, split))? };
    Ok(pi(hi, &ctl.part(split, 1.0))? - before)
}

/// pi(x) for any x (the number of primes up to x), reporting progress as the
/// fraction of the work done; cancellation and the deadline act within a
/// sieve segment per thread.
pub fn pi(x: u64, ctl: &Control) -> Result<u64, Stop> {
    let (alpha_y, alpha_z) = alphas(x);
    pi_with_alphas(x, alpha_y, alpha_z, ctl)
}

/// pi(2^64 - 1): the largest n [`nth_prime`] takes.
pub const PI_MAX: u64 = 425_656_284_035_217_743;

/// The logarithmic integral li(x), by Ramanujan's series (f64: relative error
/// about 10^-15 up to 2^64).
fn li(x: f64) -> f64 {
    const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;
    let l = x.ln();
    let (mut sum, mut term, mut inner) = (0.0f64, 1.0f64, 0.0f64);
    for n in 1..200 {
        term *= l / f64::from(n);
        if n % 2 == 1 {
            inner += 1.0 / f64::from(n);
        }
        // (-1)^(n-1) (ln x)^n / (n! 2^(n-1)) * sum_{k <= (n-1)/2} 1/(2k+1)
        let add = term / 2f64.powi(n - 1) * inner;
        sum += if n % 2 == 1 { add } else { -add };
        if add.abs() < 1e-17 * sum.abs() {
            break;
        }
    }
    EULER_GAMMA + l.ln() + x.sqrt() * sum
}

/// x with li(x) = n (Newton's method), the usual first guess for the n-th prime.
fn li_inverse(n: f64) -> f64 {
    let mut x = n * n.ln().max(1.0);
    for _ in 0..100 {
        let next = x - (li(x) - n) * x.ln();
        if (next - x).abs() < 1.0 {
            return next;
        }
        x = next.max(2.0);
    }
    x
}

/// Numbers sieved per window while the n-th prime is searched from a known
/// pi(x).
const NTH_WINDOW: u64 = 1 << 22;

/// The n-th prime (`nth_prime(1) = 2`), for `1 <= n <=` [`PI_MAX`]: pi(x) at
/// li^-1(n), pi again where the prime density puts the n-th prime while
/// sieving the gap would cost more than that pi, then a sieve over the last
/// gap, forward or backward.
pub fn nth_prime(n: u64, ctl: &Control) -> Result<u64, Stop> {
    assert!((1..=PI_MAX).contains(&n), "nth_prime takes 1 ..= pi(2^64 - 1)");
    if n <= 5_761_455 {
        // The n-th prime is below 10^8: one sieve.
        return nth_from(0, n, ctl);
    }
    // Progress: pi at the first guess, pi at a second (and rarely a third),
    // then the sieve.
    const BANDS: [(f64, f64); 3] = [(0.0, 0.45), (0.45, 0.9), (0.9, 0.95)];
    let mut x = (li_inverse(n as f64) as u64).max(SIEVE_BELOW);
    let mut c = pi(x, &ctl.part(BANDS[0].0, BANDS[0].1))?;
    let mut used = 1;
    while used < BANDS.len() {
        let gap = n as f64 - c as f64;
        let width = (gap.abs() * (x as f64).ln()) as u64;
        // Sieving above 2^48 confirms candidates by Miller-Rabin: ~200x slower.
        let sieve = sieve_seconds(width) * if x > 1 << 48 { 200.0 } else { 1.0 };
        if sieve < pi_seconds(x) {
            break;
        }
        x = (x as f64 + gap * (x as f64).ln()).clamp(SIEVE_BELOW as f64, u64::MAX as f64) as u64;
        c = pi(x, &ctl.part(BANDS[used].0, BANDS[used].1))?;
        used += 1;
    }
    let ctl = ctl.part(BANDS[used - 1].1, 1.0);
    if c < n {
        return nth_from(x + 1, n - c, &ctl);
    }
    // The n-th prime is at most x: the (c - n + 1)-th prime counting down from x.
    let mut k = c - n + 1;
    let mut hi = x;
    let mut ps = Vec::new();
    loop {
        let lo = hi.saturating_sub(NTH_WINDOW - 1);
        ps.clear();
        primes::for_each_prime(lo, hi, &ctl, |chunk| ps.extend_from_slice(chunk))?;
        if ps.len() as u64 >= k {
            return Ok(ps[ps.len() - k as usize]);
        }
        k -= ps.len() as u64;
        hi = lo.saturating_sub(1);
    }
}

/// The k-th prime at or after `from` (k >= 1; one exists below 2^64).
fn nth_from(from: u64, k: u64, ctl: &Control) -> Result<u64, Stop> {
    let mut left = k;
    let mut lo = from;
    loop {
        let hi = lo.saturating_add(NTH_WINDOW - 1);
        let mut found = None;
        primes::for_each_prime(lo, hi, ctl, |chunk| {
            if found.is_none() {
                if (chunk.len() as u64) >= left {
                    found = Some(chunk[left as usize - 1]);
                } else {
                    left -= chunk.len() as u64;
                }
            }
        })?;
        if let Some(p) = found {
            return Ok(p);
        }
        lo = hi + 1;
    }
}

/// Phi0, the ordinary leaves: `sum mu(n) phi(x/n, 6)` over the n of the
/// factor table whose least prime factor exceeds 13.
fn phi0(p: &Params, t: &Tables, ctl: &Control) -> Result<i128, Stop> {
    t.factor
        .par_chunks(1 << 16)
        .enumerate()
        .map(|(k, chunk)| {
            ctl.check()?;
            let mut s = 0i128;
            for (i, &v) in chunk.iter().enumerate() {
                if v.unsigned_abs() > 13 {
                    let f = i128::from(phi_c(p.x / wheel_number((k << 16) + i)));
                    s += if v > 0 { f } else { -f };
                }
            }
            Ok(s)
        })
        .try_reduce(|| 0, |a, b| Ok(a + b))
}

/// Integers per chunk of the segmented prime count: at most 2^27, fewer
/// when that leaves less than 8 chunks per thread (small x).
fn pass_span(width: u64) -> u64 {
    (width / (rayon::current_num_threads() as u64 * 8)).clamp(1 << 20, 1 << 27)
}

/// What one chunk of the prime count found, relative to the chunk's start.
#[derive(Default)]
struct PassOut {
    /// Over the leaves whose u falls in the chunk, each with a weight w and a
    /// constant: sum of w * (primes in the chunk up to u), of w, of the
    /// constants.
    rel: i128,
    weight: i128,
    konst: i128,
    /// sum over the primes y < p <= sqrt(x) of (primes in the chunk up to x/p).
    p2_rel: i128,
    p2_primes: i128,
    primes: u64,
}

impl PassOut {
    /// A leaf: `w * pi(u) + konst`.
    #[inline]
    fn leaf(&mut self, seg: &Segment, u: u64, w: i64, konst: i64) {
        self.rel += i128::from(w) * seg.count_le(u);
        self.weight += i128::from(w);
        self.konst += i128::from(konst);
    }
}

/// The sums of a prime count over (y, end].
struct Passed {
    /// The leaves' `w * pi(u) + konst`.
    leaves: i128,
    /// `sum pi(x / p)` over the primes `y < p <= sqrt(x)`.
    b: i128,
    pi_sqrtx: u64,
}

/// A segmented prime count over (y, end] in chunks on the rayon pool; in each
/// segment `leaves` adds the leaves whose u falls in it (`PassOut::leaf`).
/// Also sums pi(x/p) over the primes `y < p <= sqrt(x)` (end >= sqrt(x)).
fn pass<L>(p: &Params, t: &Tables, end: u64, ctl: &Control, leaves: L) -> Result<Passed, Stop>
where
    L: Fn(&Segment, &mut PassOut) + Sync,
{
    let span = pass_span(end - p.y);
    let chunks: Vec<(u64, u64)> = (0..(end - p.y).div_ceil(span))
        .map(|i| {
            let lo = p.y + 1 + i * span;
            (lo, (lo + span - 1).min(end))
        })
        .collect();
    let tally = Tally::new(ctl, chunks.len() as f64);
    let outs: Vec<PassOut> = chunks
        .into_par_iter()
        .with_max_len(1)
        .map(|(lo, hi)| {
            let out = pass_chunk(p, lo, hi, ctl, &leaves);
            tally.add(1.0);
            out
        })
        .collect::<Result<_, _>>()?;
    let pi_y = t.pi(p.y) as i128;
    let mut pi_before = pi_y;
    let (mut sums, mut p2_primes) = (Passed { leaves: 0, b: 0, pi_sqrtx: 0 }, 0i128);
    for o in outs {
        sums.leaves += o.rel + o.weight * pi_before + o.konst;
        sums.b += o.p2_rel + o.p2_primes * pi_before;
        p2_primes += o.p2_primes;
        pi_before += i128::from(o.primes);
    }
    sums.pi_sqrtx = (pi_y + p2_primes) as u64;
    Ok(sums)
}

/// Bits of the residues <= r in a wheel byte (residues 1, 7, ..., 29).
const LE_MASK: [u8; 30] = {
    let mut t = [0u8; 30];
    let mut r = 0;
    while r < 30 {
        let mut m = 0u8;
        let mut i = 0;
        while i < 8 {
            if primes::WHEEL[i] as usize <= r {
                m |= 1 << i;
            }
            i += 1;
        }
        t[r] = m;
        r += 1;
    }
    t
};

/// One sieved segment of a pass chunk: `[lo, hi]`, its primes as words of
/// the wheel bytes with a count before each word.
struct Segment<'a> {
    lo: u64,
    hi: u64,
    base: u64,
    words: &'a [u64],
    prefix: &'a [u32],
    /// The chunk's primes before the segment.
    before: i128,
}

impl Segment<'_> {
    /// The chunk's primes up to u, for u in the segment.
    #[inline]
    fn count_le(&self, u: u64) -> i128 {
        let off = u - self.base;
        let k = (off / 30) as usize;
        let (w, byte) = (k / 8, k % 8);
        let word = self.words[w];
        let below = if byte == 0 { 0 } else { (word & (u64::MAX >> (64 - 8 * byte))).count_ones() };
        let at = ((word >> (8 * byte)) as u8 & LE_MASK[(off % 30) as usize]).count_ones();
        self.before + i128::from(self.prefix[w] + below + at)
    }
}

fn pass_chunk<L>(p: &Params, lo: u64, hi: u64, ctl: &Control, leaves: &L) -> Result<PassOut, Stop>
where
    L: Fn(&Segment, &mut PassOut),
{
    let mut out = PassOut::default();
    let mut words: Vec<u64> = Vec::new();
    let mut prefix: Vec<u32> = Vec::new();
    let unlimited = Control::unlimited();
    primes::sieve_segments(lo, hi, ctl, |base, seg| {
        words.clear();
        prefix.clear();
        let last = seg.len() - 1;
        let mut acc = 0u32;
        for (w, c) in seg.chunks(8).enumerate() {
            let mut b = [0u8; 8];
            b[..c.len()].copy_from_slice(c);
            for (k, byte) in b.iter_mut().enumerate().take(c.len()) {
                let i = w * 8 + k;
                if i == 0 || i == last {
                    *byte &= primes::range_mask(base + 30 * i as u64, lo, hi);
                }
            }
            let word = u64::from_le_bytes(b);
            prefix.push(acc);
            acc += word.count_ones();
            words.push(word);
        }
        let segment = Segment {
            lo: base.max(lo),
            hi: (base + 30 * seg.len() as u64 - 1).min(hi),
            base,
            words: &words,
            prefix: &prefix,
            before: out.primes as i128,
        };
        leaves(&segment, &mut out);
        // B: the primes y < p <= sqrt(x) with x/p in the segment.
        if segment.hi >= p.sqrtx {
            let p_lo = p.y.max(p.x / (segment.hi + 1)) + 1;
            let p_hi = p.sqrtx.min(p.x / segment.lo);
            if p_lo <= p_hi {
                let _ = primes::for_each_prime(p_lo, p_hi, &unlimited, |ps| {
                    for &q in ps {
                        out.p2_rel += segment.count_le(p.x / q);
                    }
                    out.p2_primes += ps.len() as i128;
                });
            }
        }
        out.primes += u64::from(acc);
    })?;
    Ok(out)
}

/// A segment of the hard sieve: one bit per odd integer of `[lo, lo + SEG_SPAN)`
/// (bit i is lo + 2i + 1), set while no sieving prime divides it.
struct Sieve {
    bits: Vec<u64>,
    counters: Vec<u32>,
    total: u64,
}

impl Sieve {
    fn new() -> Self {
        Sieve { bits: vec![0; SEG_WORDS], counters: vec![0; (SEG_WORDS * 64) >> BLOCK_SHIFT], total: 0 }
    }

    /// Every odd integer of the segment, less the multiples of 3 to 13 (a
    /// copy from [`presieved`]: segments start at a multiple of 128).
    fn reset(&mut self, lo: u64) {
        let pattern = presieved();
        let mut w = ((lo / 128) % PRESIEVED_WORDS as u64) as usize;
        let mut filled = 0;
        while filled < SEG_WORDS {
            let n = (SEG_WORDS - filled).min(PRESIEVED_WORDS - w);
            self.bits[filled..filled + n].copy_from_slice(&pattern[w..w + n]);
            filled += n;
            w = 0;
        }
        let per = 1 << (BLOCK_SHIFT - 6);
        for (c, ws) in self.counters.iter_mut().zip(self.bits.chunks(per)) {
            *c = ws.iter().map(|w| w.count_ones()).sum();
        }
        self.total = self.counters.iter().map(|&c| u64::from(c)).sum();
    }

    /// Removes the odd multiples of `p` from bit `*next` on; `*next` becomes
    /// the first bit of the next segment's.
    fn cross(&mut self, p: u64, next: &mut usize) {
        let mut i = *next;
        while i < SEG_WORDS * 64 {
            let (w, bit) = (i >> 6, i & 63);
            let was = (self.bits[w] >> bit) & 1;
            self.bits[w] &= !(1 << bit);
            self.counters[i >> BLOCK_SHIFT] -= was as u32;
            self.total -= was;
            i += p as usize;
        }
        *next = i - SEG_WORDS * 64;
    }

    /// Set bits below bit `t`, for queries of one prime in increasing order:
    /// `cur` carries what earlier ones summed, whole blocks by their counters
    /// and the words of the current block one by one.
    #[inline]
    fn count_below(&self, cur: &mut Cursor, t: usize) -> u64 {
        let w_end = t >> 6;
        let blk = t >> BLOCK_SHIFT;
        if cur.block < blk {
            while cur.block < blk {
                cur.before_block += u64::from(self.counters[cur.block]);
                cur.block += 1;
            }
            cur.word = blk << (BLOCK_SHIFT - 6);
            cur.before_word = cur.before_block;
        }
        while cur.word < w_end {
            cur.before_word += u64::from(self.bits[cur.word].count_ones());
            cur.word += 1;
        }
        let partial = if t & 63 != 0 { (self.bits[w_end] & ((1u64 << (t & 63)) - 1)).count_ones() } else { 0 };
        cur.before_word + u64::from(partial)
    }
}

/// Where one prime's queries of the sieve got to ([`Sieve::count_below`]).
#[derive(Default)]
struct Cursor {
    block: usize,
    before_block: u64,
    word: usize,
    before_word: u64,
}

/// The odd integers' bits (bit j of the pattern is 2j + 1) with the
/// multiples of 3 to 13 cleared: 64 periods of 15,015 bits, so that it
/// repeats every `PRESIEVED_WORDS` words.
const PRESIEVED_WORDS: usize = 15_015;

fn presieved() -> &'static [u64] {
    static P: OnceLock<Vec<u64>> = OnceLock::new();
    P.get_or_init(|| {
        let mut words = vec![u64::MAX; PRESIEVED_WORDS];
        for q in [3usize, 5, 7, 11, 13] {
            // 2j + 1 is a multiple of q for j = (q - 1) / 2 + k q.
            for j in ((q - 1) / 2..PRESIEVED_WORDS * 64).step_by(q) {
                words[j >> 6] &= !(1 << (j & 63));
            }
        }
        words
    })
}

/// `n / d` for `n < 2^60` and a quotient below 2^50: a floating-point
/// quotient (off by at most one) and one correction, where a 64-bit division
/// instruction costs several times as much.
#[inline]
fn fdiv(n: u64, d: u64) -> u64 {
    let mut u = (n as f64 / d as f64) as u64;
    if u * d > n {
        u -= 1;
    } else if (u + 1) * d <= n {
        u += 1;
    }
    u
}

/// Bit of the first odd multiple of `p` at or after `lo` (even) in a segment
/// starting at `lo`.
fn first_bit(p: u64, lo: u64) -> usize {
    let mut m = (lo + 1).div_ceil(p) * p;
    if m.is_multiple_of(2) {
        m += p;
    }
    ((m - lo - 1) / 2) as usize
}

/// Segments per chunk of the hard sieve: at most 16, fewer when that leaves
/// less than 8 chunks per thread (small x, where the chunks then make one
/// group of [`hard`]).
fn hard_chunk_segments(segments: u64) -> u64 {
    segments.div_ceil(rayon::current_num_threads() as u64 * 8).clamp(1, 16)
}

/// One chunk's sums, relative to the sieve's state at its start.
struct HardOut {
    sum: i128,
    /// Per prime index: sum of the leaves' signs, and how many integers of
    /// the chunk survive the sieve by the primes before it.
    signs: Vec<i64>,
    phi: Vec<u64>,
}

/// D, the hard leaves, from a segmented sieve of `[0, x/z]`.
fn hard(p: &Params, t: &Tables, ctl: &Control) -> Result<i128, Stop> {
    let b_end = p.b_end();
    let segments = p.xz / SEG_SPAN + 1;
    let per = hard_chunk_segments(segments);
    let chunks: Vec<(u64, u64)> = (0..segments.div_ceil(per)).map(|i| (i * per, ((i + 1) * per).min(segments))).collect();
    let xps: Vec<u64> = (0..b_end).map(|b| p.x / t.prime(b)).collect();
    let tally = Tally::new(ctl, segments as f64);
    let mut phi = vec![0u64; b_end];
    let mut sum = 0i128;
    // A few chunks per thread at a time, combined in order as each group
    // ends: memory stays a few chunks' per-prime sums whatever x is.
    for group in chunks.chunks(rayon::current_num_threads() * 8) {
        let outs: Vec<HardOut> = group
            .par_iter()
            .with_max_len(1)
            .map(|&(first, end)| {
                let out = hard_chunk(p, t, &xps, first, end, ctl);
                tally.add((end - first) as f64);
                out
            })
            .collect::<Result<_, _>>()?;
        for o in outs {
            sum += o.sum;
            for ((phi, &signs), &more) in phi.iter_mut().zip(&o.signs).zip(&o.phi).skip(C) {
                sum += i128::from(signs) * i128::from(*phi);
                *phi += more;
            }
        }
    }
    Ok(sum)
}

/// The hard leaves whose x/(pm) falls in segments `first..end`.
fn hard_chunk(p: &Params, t: &Tables, xps: &[u64], first: u64, end: u64, ctl: &Control) -> Result<HardOut, Stop> {
    let b_end = p.b_end();
    let mut out = HardOut { sum: 0, signs: vec![0; b_end], phi: vec![0; b_end] };
    let mut sieve = Sieve::new();
    let start = first * SEG_SPAN;
    let mut next: Vec<usize> = (0..b_end).map(|b| if b < C { 0 } else { first_bit(t.prime(b), start) }).collect();
    for s in first..end {
        ctl.check()?;
        let lo = s * SEG_SPAN;
        let hi = lo + SEG_SPAN;
        sieve.reset(lo);
        // Every leaf has x/(pm) >= p^2: a prime above sqrt(x / lo) has none
        // here or in any later segment, and the sieve needs it no more.
        let mut b_stop = b_end;
        if lo > 0 && b_end > C {
            let bound = isqrt(p.x / lo);
            if bound < t.prime(b_end - 1) {
                b_stop = b_stop.min(t.pi(bound) + 1);
            }
        }
        for b in C..b_stop {
            let pr = t.prime(b);
            let xp = xps[b];
            let mut cur = Cursor::default();
            let base = i128::from(out.phi[b]);
            if b < p.pi_sqrtz {
                // Squarefree m in (max(z/p, x/(p hi)), min(z, x/p^3, x/(p lo))]
                // with lpf(m) > p; each adds -mu(m) (base + count).
                let mut m_max = p.z.min(xp / pr / pr);
                if let Some(v) = xp.checked_div(lo) {
                    m_max = m_max.min(v);
                }
                let m_min = (p.z / pr).max(xp / hi);
                if m_max > m_min {
                    let (mut mus, mut counted) = (0i64, 0i64);
                    let mut leaves = |found: &[u32]| {
                        for &i in found {
                            let u = fdiv(xp, wheel_number(i as usize));
                            let c = sieve.count_below(&mut cur, (u - lo).div_ceil(2) as usize) as i64;
                            let mu = i64::from(t.factor[i as usize].signum());
                            mus += mu;
                            counted += mu * c;
                        }
                    };
                    // The m with lpf(m) > p, gathered without a branch per m
                    // (about one in three passes, unpredictably).
                    let mut found = [0u32; 256];
                    let mut n = 0;
                    for i in (wheel_count(m_min)..wheel_count(m_max)).rev() {
                        found[n] = i as u32;
                        n += usize::from(u64::from(t.factor[i].unsigned_abs()) > pr);
                        if n == found.len() {
                            leaves(&found);
                            n = 0;
                        }
                    }
                    leaves(&found[..n]);
                    out.sum -= i128::from(mus) * base + i128::from(counted);
                    out.signs[b] -= mus;
                }
            } else {
                // Primes q in (max(p, x/(p hi)), min(y, x/p^3, x/(p lo))]; each
                // adds base + count.
                let mut q_max = p.y.min(xp / pr / pr);
                if let Some(v) = xp.checked_div(lo) {
                    q_max = q_max.min(v);
                }
                let q_min = pr.max(xp / hi);
                if q_max > q_min {
                    let (i_lo, i_hi) = (t.pi(q_min), t.pi(q_max));
                    let mut counted = 0u64;
                    for i in (i_lo..i_hi).rev() {
                        let u = t.div(xp, i);
                        counted += sieve.count_below(&mut cur, (u - lo).div_ceil(2) as usize);
                    }
                    out.sum += (i_hi - i_lo) as i128 * base + i128::from(counted);
                    out.signs[b] += (i_hi - i_lo) as i64;
                }
            }
            out.phi[b] += sieve.total;
            sieve.cross(pr, &mut next[b]);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_phi_table_counts_integers_prime_to_30030() {
        assert_eq!(phi_c(30030), 5760);
        assert_eq!(phi_c(17), 2); // 1 and 17
        assert_eq!(phi_c(0), 0);
    }

    #[test]
    fn roots_are_exact_at_powers() {
        assert_eq!(iroot(1_000_000_000_000, 3), 10_000);
        assert_eq!(iroot(999_999_999_999, 3), 9_999);
        assert_eq!(iroot(u64::MAX, 3), 2_642_245);
        assert_eq!(iroot(u64::MAX, 4), 65_535);
    }

    #[test]
    fn li_and_its_inverse_match_known_values() {
        // li(10^10) = 455055614.586..., pi(10^10) = 455052511.
        assert!((li(1e10) - 455_055_614.586).abs() < 0.01);
        assert!((li_inverse(455_055_614.586) - 1e10).abs() < 1e3);
    }

    #[test]
    fn nth_prime_at_known_points() {
        let ctl = Control::unlimited();
        for (n, p) in [(1u64, 2u64), (2, 3), (4, 7), (5, 11), (1_000_000, 15_485_863), (5_761_455, 99_999_989), (5_761_456, 100_000_007), (50_847_534, 999_999_937), (455_052_511, 9_999_999_967)] {
            assert_eq!(nth_prime(n, &ctl).expect("unlimited"), p, "prime number {n}");
        }
    }
}
