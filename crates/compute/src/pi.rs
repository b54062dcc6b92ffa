//! pi(x), the number of primes up to x, for any x < 2^64, by the
//! combinatorial method: Lagarias, Miller and Odlyzko's decomposition with
//! Deleglise and Rivat's split of the special leaves, in
//! O(x^(2/3) / log^2 x) time and O(x^(1/3) log x)-sized tables.
//!
//! With `y = alpha x^(1/3)` ([`alpha`]), `z = x / y`, `a = pi(y)` and the
//! first `c = 6` primes (2 to 13) sieved by a table of one period of 30030:
//!
//! `pi(x) = S1 + S2 + a - 1 - P2`, where
//! - `S1 = sum mu(n) phi(x/n, c)` over the squarefree `n <= y` whose smallest
//!   prime factor exceeds 13 (the ordinary leaves; [`s1`]);
//! - `S2 = sum -mu(m) phi(x / (m p), b)` over the special leaves: `p` the
//!   `(b+1)`-th prime (`b >= c`), `m <= y < m p`, `lpf(m) > p`. They are
//!   - *trivial* (`x/(pq) < p`, phi = 1) and *easy* (`x/(pq) < p^2`,
//!     phi = pi(x/(pq)) - b + 1) when `p > sqrt(y)`: counted from pi tables,
//!     clustered where many q share the same pi ([`easy_small`]) or one by one
//!     in a segmented prime count above y ([`pass_chunk`]);
//!   - *hard* otherwise: phi from a segmented sieve of `[1, z)` by the primes
//!     in order, with a counter per 1,024 sieve bits ([`hard_chunk`]).
//! - `P2 = sum (pi(x/p) - pi(p) + 1)` over the primes `y < p <= sqrt(x)`, from
//!   the same segmented prime count up to z.
//!
//! Both segmented passes split their range into chunks on the rayon pool.
//! The hard sieve's chunks count relative to their own start and are
//! combined in order (each leaf's missing part is the count of the sieve
//! before the chunk, the same for every leaf of one prime), so chunks run in
//! any order on any thread.

use std::sync::OnceLock;

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

/// `y = alpha x^(1/3)`: a larger alpha moves work from the hard sieve (up to
/// `x / y`) to the tables (up to `y`). Tuned with `crunch-primes pi X THREADS ALPHA`
/// (docs/benchmarks.md).
pub fn alpha(x: u64) -> f64 {
    // (log10 x, alpha) measured best on one thread; linear in between.
    const POINTS: [(f64, f64); 5] = [(12.0, 4.0), (14.0, 7.0), (16.0, 12.0), (18.0, 20.0), (19.3, 26.0)];
    let l = (x as f64).log10();
    let i = POINTS.iter().rposition(|&(at, _)| at <= l).unwrap_or(0).min(POINTS.len() - 2);
    let ((l0, a0), (l1, a1)) = (POINTS[i], POINTS[i + 1]);
    (a0 + (a1 - a0) * (l - l0) / (l1 - l0)).clamp(1.0, 30.0)
}

/// Primes, pi and mu * lpf up to y.
struct Tables {
    primes: Vec<u32>,
    /// 1 / primes[i], for quotients without a division instruction.
    inv: Vec<f64>,
    /// pi up to y: per 128 integers, the primes below them and a bit per odd
    /// integer (one cache access per lookup).
    pi_words: Vec<PiWord>,
    /// For odd `m <= y`, at `m / 2`: `mu(m) * lpf(m)`, 0 when `mu(m) = 0`,
    /// `i32::MAX` for 1.
    mu_lpf: Vec<i32>,
}

impl Tables {
    fn new(y: u64, ctl: &Control) -> Result<Self, Stop> {
        let mut pi_words = vec![PiWord { bits: 0, below: 0 }; (y / 128 + 1) as usize];
        let mut primes = Vec::new();
        primes::for_each_prime(2, y, ctl, |ps| {
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
        let mut mu_lpf = vec![1i32; (y / 2 + 1) as usize];
        for &p in primes.iter().skip(1) {
            let p = u64::from(p);
            // Each odd multiple gets one more prime factor: the sign flips,
            // and the first prime to reach it is its least.
            for m in (p..=y).step_by(2 * p as usize) {
                let v = &mut mu_lpf[(m / 2) as usize];
                *v = if v.unsigned_abs() == 1 { -*v * p as i32 } else { -*v };
            }
            let p2 = p * p;
            if p2 <= y {
                for m in (p2..=y).step_by(2 * p2 as usize) {
                    mu_lpf[(m / 2) as usize] = 0;
                }
            }
        }
        mu_lpf[0] = i32::MAX;
        let inv = primes.iter().map(|&p| 1.0 / f64::from(p)).collect();
        Ok(Tables { primes, inv, pi_words, mu_lpf })
    }

    /// pi(n) for 2 <= n <= y.
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

/// The sizes every part works with.
#[derive(Debug, Clone, Copy)]
struct Params {
    x: u64,
    y: u64,
    z: u64,
    sqrtx: u64,
    /// pi(y).
    a: usize,
    /// pi(sqrt(y)): below it, special leaves come with any squarefree m.
    pi_sqrty: usize,
    /// The hard sieve runs the primes of index C..b_end.
    b_end: usize,
}

/// Seconds of one thread for pi(x) (measured: 0.05 s at 10^12, 0.9 s at
/// 10^14, 15 s at 10^16) and for sieving `width` numbers (2.4 s per 10^10).
fn pi_seconds(x: u64) -> f64 {
    if x < SIEVE_BELOW {
        return sieve_seconds(x);
    }
    15.0 * (x as f64 / 1e16).powf(0.62)
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
    pi_with_alpha(x, alpha(x), ctl)
}

/// [`pi`] with a chosen alpha (for tuning).
pub fn pi_with_alpha(x: u64, alpha: f64, ctl: &Control) -> Result<u64, Stop> {
    if x < SIEVE_BELOW {
        return primes::count(0, x, ctl);
    }
    let x13 = iroot(x, 3);
    let sqrtx = isqrt(x);
    let y = ((alpha.max(1.0) * x13 as f64) as u64).clamp(x13, sqrtx);
    let t = Tables::new(y, ctl)?;
    let a = t.primes.len();
    let pi_sqrty = t.pi(isqrt(y));
    let mut b_end = pi_sqrty.max(C);
    while b_end < a {
        let p = t.prime(b_end);
        if x / p / p / p <= p {
            break;
        }
        b_end += 1;
    }
    let p = Params { x, y, z: x / y, sqrtx, a, pi_sqrty, b_end };

    // Progress: each part reports its own fraction done within its share of
    // the whole (the shares of a run at 10^16 on two threads).
    let s1 = s1(&p, &t, ctl)?;
    let easy = easy_small(&p, &t, &ctl.part(0.0, 0.5))?;
    let (s2_easy_big, p2) = pass(&p, &t, &ctl.part(0.5, 0.65))?;
    let hard = hard(&p, &t, &ctl.part(0.65, 1.0))?;
    let total = s1 + easy + s2_easy_big + hard + a as i128 - 1 - p2;
    Ok(u64::try_from(total).unwrap_or(0))
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

/// The ordinary leaves.
fn s1(p: &Params, t: &Tables, ctl: &Control) -> Result<i128, Stop> {
    t.mu_lpf
        .par_chunks(1 << 16)
        .enumerate()
        .map(|(k, chunk)| {
            ctl.check()?;
            let mut s = 0i128;
            for (i, &v) in chunk.iter().enumerate() {
                let n = 2 * ((k << 16) + i) as u64 + 1;
                if n > p.y {
                    break;
                }
                if v.unsigned_abs() > 13 {
                    let f = i128::from(phi_c(p.x / n));
                    s += if v > 0 { f } else { -f };
                }
            }
            Ok(s)
        })
        .try_reduce(|| 0, |a, b| Ok(a + b))
}

/// Trivial leaves, and easy leaves with `x/(pq) <= y` (pi from the table),
/// for the primes `sqrt(y) < p <= y`. Consecutive q with the same
/// pi(x/(pq)) are counted together.
fn easy_small(p: &Params, t: &Tables, ctl: &Control) -> Result<i128, Stop> {
    let range = p.pi_sqrty.max(C)..p.a;
    let first = range.start;
    // Progress and the control's check at one prime in `step` (1,000 in all).
    let step = (range.end - range.start).max(1).div_ceil(1000);
    // The work per prime falls steeply with b: progress is the fraction of
    // the primes done, weighted by x / p^2 (which bounds their leaves).
    let weight = |b: usize| -> f64 { 1.0 / (t.prime(b) as f64).powi(2) };
    let tally = Tally::new(ctl, range.clone().step_by(step).map(weight).sum());
    range
        .into_par_iter()
        .with_max_len(64)
        .map(|b| {
            if (b - first) % step == 0 {
                ctl.check()?;
                tally.add(weight(b));
            }
            let pr = t.prime(b);
            let xp = p.x / pr;
            let mut s = 0i128;
            // Trivial: q in (max(p, x/p^2), y].
            let t_lo = pr.max(xp / pr);
            if t_lo < p.y {
                s += (p.a - t.pi(t_lo)) as i128;
            }
            // Easy with u <= y: q in (max(p, x/p^3, x/(p(y+1))), min(y, x/p^2)].
            let q_min = pr.max(xp / pr / pr).max(xp / (p.y + 1));
            let q_max = p.y.min(xp / pr);
            if q_max > q_min {
                let mut i = t.pi(q_min);
                let end = t.pi(q_max);
                // Sparse: up to sqrt(x/p), consecutive q rarely share pi(x/(pq)).
                let sparse_end = end.min(t.pi(isqrt(xp).min(p.y)));
                if i < sparse_end {
                    let mut sum = 0u64;
                    for j in i..sparse_end {
                        sum += t.pi(t.div(xp, j)) as u64;
                    }
                    s += i128::from(sum) + (sparse_end - i) as i128 * (1 - b as i128);
                    i = sparse_end;
                }
                while i < end {
                    let k = t.pi(t.div(xp, i));
                    // Every q' with x/(p q') >= the k-th prime has the same pi.
                    let last = q_max.min(t.div(xp, k - 1));
                    let j = t.pi(last);
                    s += (j - i) as i128 * (k as i128 - b as i128 + 1);
                    i = j;
                }
            }
            Ok(s)
        })
        .try_reduce(|| 0, |a, b| Ok(a + b))
}

/// Integers per chunk of the segmented prime count.
const PASS_SPAN: u64 = 1 << 27;

/// What one chunk of the prime count over (y, z] found, relative to the
/// chunk's start.
#[derive(Default)]
struct PassOut {
    /// sum over easy leaves with u > y of (primes in the chunk up to u).
    easy_rel: i128,
    easy_leaves: i128,
    /// sum over the leaves of (1 - b).
    easy_const: i128,
    /// sum over P2's primes p of (primes in the chunk up to x/p).
    p2_rel: i128,
    p2_primes: i128,
    primes: u64,
}

/// Easy leaves above y and P2, from a prime count over (y, z] in chunks.
fn pass(p: &Params, t: &Tables, ctl: &Control) -> Result<(i128, i128), Stop> {
    let chunks: Vec<(u64, u64)> = (0..(p.z - p.y).div_ceil(PASS_SPAN))
        .map(|i| {
            let lo = p.y + 1 + i * PASS_SPAN;
            (lo, (lo + PASS_SPAN - 1).min(p.z))
        })
        .collect();
    let tally = Tally::new(ctl, chunks.len() as f64);
    let outs: Vec<PassOut> = chunks
        .into_par_iter()
        .with_max_len(1)
        .map(|(lo, hi)| {
            let out = pass_chunk(p, t, lo, hi, ctl);
            tally.add(1.0);
            out
        })
        .collect::<Result<_, _>>()?;
    let mut pi_before = p.a as i128;
    let (mut easy, mut p2, mut p2_primes) = (0i128, 0i128, 0i128);
    for o in outs {
        easy += o.easy_rel + o.easy_leaves * pi_before + o.easy_const;
        p2 += o.p2_rel + o.p2_primes * pi_before;
        p2_primes += o.p2_primes;
        pi_before += i128::from(o.primes);
    }
    // P2's primes are pi(y) + 1 .. K, K = pi(sqrt(x)): subtract sum (k - 1).
    let a = p.a as i128;
    let k = a + p2_primes;
    Ok((easy, p2 - (k * (k - 1) / 2 - a * (a - 1) / 2)))
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

fn pass_chunk(p: &Params, t: &Tables, lo: u64, hi: u64, ctl: &Control) -> Result<PassOut, Stop> {
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
        let before = out.primes as i128;
        // Primes of the chunk up to u, for u in this segment.
        let count_le = |u: u64| -> i128 {
            let off = u - base;
            let k = (off / 30) as usize;
            let (w, byte) = (k / 8, k % 8);
            let word = words[w];
            let below = if byte == 0 { 0 } else { (word & (u64::MAX >> (64 - 8 * byte))).count_ones() };
            let at = ((word >> (8 * byte)) as u8 & LE_MASK[(off % 30) as usize]).count_ones();
            before + i128::from(prefix[w] + below + at)
        };
        let s_lo = base.max(lo);
        let s_hi = (base + 30 * seg.len() as u64 - 1).min(hi);
        // Easy leaves with y < u = x/(pq) < p^2 in [s_lo, s_hi].
        if s_lo <= p.sqrtx {
            let b_first = p.pi_sqrty.max(C).max(t.pi(isqrt(s_lo)).saturating_sub(1));
            let b_last = t.pi(p.y.min(isqrt(p.x / s_lo)));
            for b in b_first..b_last {
                let pr = t.prime(b);
                let xp = p.x / pr;
                let q_min = pr.max(xp / pr / pr).max(xp / (s_hi + 1));
                let q_max = p.y.min(xp / pr).min(xp / s_lo).min(xp / (p.y + 1));
                if q_max <= q_min {
                    continue;
                }
                let (i_lo, i_hi) = (t.pi(q_min), t.pi(q_max));
                for i in i_lo..i_hi {
                    out.easy_rel += count_le(t.div(xp, i));
                }
                out.easy_leaves += (i_hi - i_lo) as i128;
                out.easy_const += (i_hi - i_lo) as i128 * (1 - b as i128);
            }
        }
        // P2: primes y < p <= sqrt(x) with x/p in [s_lo, s_hi].
        if s_hi >= p.sqrtx {
            let p_lo = p.y.max(p.x / (s_hi + 1)) + 1;
            let p_hi = p.sqrtx.min(p.x / s_lo);
            if p_lo <= p_hi {
                let _ = primes::for_each_prime(p_lo, p_hi, &unlimited, |ps| {
                    for &q in ps {
                        out.p2_rel += count_le(p.x / q);
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

    /// Every odd integer of the segment, less the multiples of 3 to 13.
    fn reset(&mut self, lo: u64) {
        self.bits.fill(u64::MAX);
        for q in [3u64, 5, 7, 11, 13] {
            let mut i = first_bit(q, lo);
            while i < SEG_WORDS * 64 {
                self.bits[i >> 6] &= !(1 << (i & 63));
                i += q as usize;
            }
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

    /// Set bits below bit `t`; `cur` carries the counters already summed
    /// (queries of one prime come in increasing order).
    #[inline]
    fn count_below(&self, cur: &mut (usize, u64), t: usize) -> u64 {
        let blk = t >> BLOCK_SHIFT;
        while cur.0 < blk {
            cur.1 += u64::from(self.counters[cur.0]);
            cur.0 += 1;
        }
        let mut c = cur.1;
        let w_end = t >> 6;
        for w in &self.bits[blk << (BLOCK_SHIFT - 6)..w_end] {
            c += u64::from(w.count_ones());
        }
        if t & 63 != 0 {
            c += u64::from((self.bits[w_end] & ((1u64 << (t & 63)) - 1)).count_ones());
        }
        c
    }
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

/// Segments per chunk of the hard sieve.
const HARD_CHUNK_SEGMENTS: u64 = 16;

/// One chunk's sums, relative to the sieve's state at its start.
struct HardOut {
    sum: i128,
    /// Per prime index: sum of the leaves' signs, and how many integers of
    /// the chunk survive the sieve by the primes before it.
    signs: Vec<i64>,
    phi: Vec<u64>,
}

fn hard(p: &Params, t: &Tables, ctl: &Control) -> Result<i128, Stop> {
    let segments = p.z / SEG_SPAN + 1;
    let chunks: Vec<(u64, u64)> =
        (0..segments.div_ceil(HARD_CHUNK_SEGMENTS)).map(|i| (i * HARD_CHUNK_SEGMENTS, ((i + 1) * HARD_CHUNK_SEGMENTS).min(segments))).collect();
    let xps: Vec<u64> = (0..p.b_end).map(|b| p.x / t.prime(b)).collect();
    let tally = Tally::new(ctl, segments as f64);
    let mut phi = vec![0u64; p.b_end];
    let mut sum = 0i128;
    // A few chunks per thread at a time, combined in order as each group
    // ends: memory stays a few chunks' per-prime sums whatever z is.
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
    let mut out = HardOut { sum: 0, signs: vec![0; p.b_end], phi: vec![0; p.b_end] };
    let mut sieve = Sieve::new();
    let start = first * SEG_SPAN;
    let mut next: Vec<usize> = (0..p.b_end).map(|b| if b < C { 0 } else { first_bit(t.prime(b), start) }).collect();
    for s in first..end {
        ctl.check()?;
        let lo = s * SEG_SPAN;
        let hi = lo + SEG_SPAN;
        sieve.reset(lo);
        for b in C..p.b_end {
            let pr = t.prime(b);
            let xp = xps[b];
            let mut cur = (0usize, 0u64);
            let base = out.phi[b];
            if b < p.pi_sqrty {
                // Squarefree m in (max(y/p, x/(p hi)), min(y, x/(p lo))] with lpf(m) > p.
                let m_max = xp.checked_div(lo).map_or(p.y, |v| p.y.min(v));
                let m_min = (p.y / pr).max(xp / hi);
                if m_max > m_min {
                    let mut m = m_max - (1 - m_max % 2);
                    let (mut sum, mut signs) = (0i128, 0i64);
                    while m > m_min {
                        let v = t.mu_lpf[(m / 2) as usize];
                        if u64::from(v.unsigned_abs()) > pr {
                            let u = xp / m;
                            let phi = i128::from(base + sieve.count_below(&mut cur, (u - lo).div_ceil(2) as usize));
                            if v > 0 {
                                sum -= phi;
                                signs -= 1;
                            } else {
                                sum += phi;
                                signs += 1;
                            }
                        }
                        m -= 2;
                    }
                    out.sum += sum;
                    out.signs[b] += signs;
                }
            } else {
                // Primes q in (max(p, x/(p hi)), min(y, x/p^3, x/(p lo))].
                let mut q_max = p.y.min(xp / pr / pr);
                if let Some(v) = xp.checked_div(lo) {
                    q_max = q_max.min(v);
                }
                let q_min = pr.max(xp / hi);
                if q_max > q_min {
                    let (i_lo, i_hi) = (t.pi(q_min), t.pi(q_max));
                    let mut sum = 0i128;
                    for i in (i_lo..i_hi).rev() {
                        let u = t.div(xp, i);
                        sum += i128::from(base + sieve.count_below(&mut cur, (u - lo).div_ceil(2) as usize));
                    }
                    out.sum += sum;
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

    fn sieve_pi(x: u64) -> u64 {
        primes::count(0, x, &Control::unlimited()).expect("unlimited")
    }

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

    #[test]
    fn matches_the_sieve_for_every_alpha() {
        for x in [100_000_000u64, 123_456_789, 1_000_000_007, 4_294_967_296, 10_000_000_000] {
            let want = sieve_pi(x);
            for alpha in [1.0, 2.0, 5.0, 13.0, 40.0] {
                assert_eq!(pi_with_alpha(x, alpha, &Control::unlimited()).expect("unlimited"), want, "x = {x}, alpha = {alpha}");
            }
        }
    }
}
