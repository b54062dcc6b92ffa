//! The driver of Gourdon's formulas (the module doc of [`super`]), the A and
//! C leaves and Sigma.

use rayon::prelude::*;

use super::{hard, iroot, pass, phi0, Params, PassOut, Segment, Tables, C, SIEVE_BELOW};
use crate::control::{Control, Stop};
use crate::primes::{self, isqrt};

/// `(alpha_y, alpha_z)` for x: a larger alpha_y moves work from D's sieve
/// (up to x/z) and the prime count (up to x/y) to the tables (up to z), a
/// larger alpha_z from A and C to D. Measured best with
/// `crunch-primes pi X THREADS ALPHA_Y ALPHA_Z` on 1 and 2 threads (flat
/// within 10% around these), linear in log10 x in between.
pub fn alphas(x: u64) -> (f64, f64) {
    const POINTS: [(f64, f64, f64); 6] = [(12.0, 5.0, 2.0), (14.0, 9.0, 2.0), (16.0, 12.0, 2.0), (17.0, 14.0, 2.0), (18.0, 16.0, 2.0), (19.3, 20.0, 2.0)];
    let l = (x as f64).log10();
    let i = POINTS.iter().rposition(|&(at, _, _)| at <= l).unwrap_or(0).min(POINTS.len() - 2);
    let ((l0, y0, z0), (l1, y1, z1)) = (POINTS[i], POINTS[i + 1]);
    let f = (l - l0) / (l1 - l0);
    ((y0 + (y1 - y0) * f).clamp(1.0, 40.0), (z0 + (z1 - z0) * f).clamp(1.0, 8.0))
}

/// `x* = max(x^(1/4), ceil(x / y^2))`, at most y and sqrt(x / y).
fn x_star(x: u64, y: u64) -> u64 {
    let yy = u128::from(y) * u128::from(y);
    let x_div_yy = u128::from(x).div_ceil(yy) as u64;
    iroot(x, 4).max(x_div_yy).min(y).min(isqrt(x / y)).max(1)
}

/// The prime indexes with leaves in A or C.
fn ac_indexes(p: &Params) -> impl Iterator<Item = usize> {
    (p.c1_lo..p.pi_sqrtz).chain(p.c2_lo..p.pi_x13)
}

/// [`super::pi`] with chosen tuning factors: y = alpha_y x^(1/3), z = alpha_z y.
pub fn pi_with_alphas(x: u64, alpha_y: f64, alpha_z: f64, ctl: &Control) -> Result<u64, Stop> {
    if x < SIEVE_BELOW {
        return primes::count(0, x, ctl);
    }
    let x13 = iroot(x, 3);
    let sqrtx = isqrt(x);
    let y = ((alpha_y.max(1.0) * x13 as f64) as u64).max(x13 + 1).min(sqrtx - 1);
    let z = ((alpha_z.max(1.0) * y as f64) as u64).max(y).min(sqrtx - 1);
    let xs = x_star(x, y);
    let trace = std::env::var_os("CRUNCH_PI_TRACE").is_some();
    let mut at = std::time::Instant::now();
    let mut lap = |what: &str| {
        if trace {
            eprintln!("{what}: {:.3} s", at.elapsed().as_secs_f64());
            at = std::time::Instant::now();
        }
    };
    let t = Tables::build(y.max(isqrt(x / xs)), z, y, ctl)?;
    let pi_sqrtz = t.pi(isqrt(z));
    let pi_xs = t.pi(xs);
    let p = Params {
        x,
        y,
        z,
        sqrtx,
        xz: x / z,
        pi_sqrtz,
        pi_xs,
        c1_lo: C.max(t.pi(iroot(x / z, 3))),
        c2_lo: C.max(t.pi(iroot(x / y, 3))).max(pi_sqrtz),
        pi_x13: t.pi(x13),
    };
    lap("tables");
    let phi0 = phi0(&p, &t, ctl)?;
    lap("phi0");
    let ac_small = ac_table(&p, &t, &ctl.part(0.0, 0.3))?;
    lap("ac table");
    let passed = pass(&p, &t, x / y, &ctl.part(0.3, 0.5), |seg, out| ac_segment(&p, &t, seg, out))?;
    lap("ac pass + b");
    let d = hard(&p, &t, &ctl.part(0.5, 1.0))?;
    lap("d");
    let sigma = sigma(x, y, xs, passed.pi_sqrtx, &t);
    let total = ac_small + passed.leaves - passed.b + d + phi0 + sigma;
    Ok(u64::try_from(total).unwrap_or(0))
}

/// The leaves of A and C for the prime of index i with `u = x/(pm)` in
/// `[u_lo, u_hi]`: `leaf(u, w, konst)` adds `w pi(u) + konst`.
#[inline]
fn ac_leaves(p: &Params, t: &Tables, i: usize, u_lo: u64, u_hi: u64, mut leaf: impl FnMut(u64, i64, i64)) {
    let pr = t.prime(i);
    let xp = p.x / pr;
    // q < x / (p (u_hi + 1)) + 1 means x/(pq) <= u_hi; q <= x / (p u_lo) means x/(pq) >= u_lo.
    let (above, below) = (xp / (u_hi + 1), xp / u_lo);
    if i >= p.pi_xs {
        // A: q in (p, sqrt(x/p)].
        let q_min = pr.max(above);
        let q_max = isqrt(xp).min(below);
        if q_max > q_min {
            let once = xp / p.y;
            for j in t.pi(q_min)..t.pi(q_max) {
                leaf(t.div(xp, j), if t.prime(j) <= once { 1 } else { 2 }, 0);
            }
        }
        return;
    }
    // C's leaves add pi(u) - b + 2, b = i + 1.
    let konst = 1 - i as i64;
    let cube = xp / pr / pr;
    if i >= p.pi_sqrtz {
        // C, second part: m = q prime in (max(x/p^3, p), min(x/p^2, y)].
        let q_min = cube.max(pr).max(above);
        let q_max = (xp / pr).min(p.y).min(below);
        if q_max > q_min {
            for j in t.pi(q_min)..t.pi(q_max) {
                leaf(t.div(xp, j), 1, konst);
            }
        }
        return;
    }
    // C, first part: m in (max(x/p^3, z/p), z].
    let min_m = cube.max(p.z / pr).max(above);
    let max_m = p.z.min(below);
    if min_m >= max_m {
        return;
    }
    let max_prime = p.y.min(max_m);
    if min_m < max_prime {
        for j in t.pi(min_m)..t.pi(max_prime) {
            leaf(t.div(xp, j), 1, konst);
        }
    }
    // m = q r, p < q < r <= y.
    let max_q = p.y.min(isqrt(max_m));
    let min_q = pr.max(min_m / p.y);
    if min_q < max_q {
        for j in t.pi(min_q)..t.pi(max_q) {
            let q = t.prime(j);
            let min_r = q.max(min_m / q);
            let max_r = p.y.min(max_m / q);
            if min_r >= max_r {
                continue;
            }
            let xpq = t.div(xp, j);
            for l in t.pi(min_r)..t.pi(max_r) {
                leaf(t.div(xpq, l), -1, -konst);
            }
        }
    }
}

/// The leaves of A and C with `u <= y`, pi from the table.
fn ac_table(p: &Params, t: &Tables, ctl: &Control) -> Result<i128, Stop> {
    let indexes: Vec<usize> = ac_indexes(p).collect();
    let step = indexes.len().max(1).div_ceil(1000);
    let tally = crate::control::Tally::new(ctl, indexes.len().div_ceil(step) as f64);
    indexes
        .par_iter()
        .enumerate()
        .with_max_len(64)
        .map(|(n, &i)| {
            if n % step == 0 {
                ctl.check()?;
                tally.add(1.0);
            }
            let (mut pis, mut konst) = (0i64, 0i64);
            ac_leaves(p, t, i, 1, p.y, |u, w, k| {
                pis += w * t.pi(u) as i64;
                konst += k;
            });
            Ok(i128::from(pis) + i128::from(konst))
        })
        .try_reduce(|| 0, |a, b| Ok(a + b))
}

/// The leaves of A and C with u in a segment of the prime count above y.
fn ac_segment(p: &Params, t: &Tables, seg: &Segment, out: &mut PassOut) {
    // Every leaf has p^2 > u (p > x^(1/4) in A, m > x/p^3 in C) and
    // u < x/p^2.
    let lo = t.pi(isqrt(seg.lo)).saturating_sub(1);
    let hi = t.pi(isqrt(p.x / seg.lo)).min(p.pi_x13);
    let (c1, c2) = (lo.max(p.c1_lo)..hi.min(p.pi_sqrtz), lo.max(p.c2_lo)..hi);
    for i in c1.chain(c2) {
        ac_leaves(p, t, i, seg.lo, seg.hi, |u, w, k| out.leaf(seg, u, w, k));
    }
}

/// Gourdon's seven Sigma terms.
fn sigma(x: u64, y: u64, xs: u64, pi_sqrtx: u64, t: &Tables) -> i128 {
    let x13 = iroot(x, 3);
    let a = t.pi(y) as i128;
    let b = t.pi(x13) as i128;
    let c = t.pi(isqrt(x / y)) as i128;
    let d = t.pi(xs) as i128;
    let s = pi_sqrtx as i128;
    let sigma0 = a - 1 + s * (s - 1) / 2 - a * (a - 1) / 2;
    let sigma1 = (a - b) * (a - b - 1) / 2;
    let sigma2 = a * (b - c - c * (c - 3) / 2 + d * (d - 3) / 2);
    let sigma3 = b * (b - 1) * (2 * b - 1) / 6 - b - d * (d - 1) * (2 * d - 1) / 6 + d;
    let sqrt_xy = isqrt(x / y);
    let (mut s4, mut s5, mut s6) = (0i128, 0i128, 0i128);
    for i in t.pi(xs)..t.pi(x13) {
        let p = t.prime(i);
        if p <= sqrt_xy {
            s4 += t.pi(x / (p * y)) as i128;
        } else {
            s5 += t.pi(x / (p * p)) as i128;
        }
        let q = t.pi(isqrt(x / p)) as i128;
        s6 += q * q;
    }
    sigma0 + sigma1 + sigma2 + sigma3 + a * s4 + s5 - s6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_sieve_for_every_alpha_pair() {
        for x in [100_000_000u64, 123_456_789, 1_000_000_007, 4_294_967_296, 10_000_000_000, 99_999_999_977] {
            let want = primes::count(0, x, &Control::unlimited()).expect("unlimited");
            for (ay, az) in [(1.0, 1.0), (2.0, 1.0), (3.0, 2.0), (5.0, 1.5), (13.0, 3.0), (40.0, 1.0), (1.0, 8.0)] {
                assert_eq!(pi_with_alphas(x, ay, az, &Control::unlimited()).expect("unlimited"), want, "x = {x}, alpha_y = {ay}, alpha_z = {az}");
            }
        }
    }
}
