//! pi(x) and wide counts against primecount (Debian package primecount,
//! installed by scripts/test.sh) and narrow ones against the sieve:
//! - 300 seeded x: random below 10^12 (every size from 10^8 on), powers of
//!   ten to 10^14, powers of two to 2^46 and their neighbours, four pairs of
//!   alphas far from the tuned ones at a dozen sizes; pi(10^15) with its progress;
//! - `pi::count(a, b)` on seeded ranges, wide (pi) and narrow (sieve), up to
//!   2^64 - 1;
//! - `pi::nth_prime(n)` on 40 seeded n up to 10^11 against `primecount -n`.

use std::io::Write;
use std::process::{Command, Stdio};

use crunch_compute::pi::{count, nth_prime, pi, pi_with_alphas, prefers_pi};
use crunch_compute::{primes, Control};
use rand::{Rng, SeedableRng};

/// primecount's pi of each x, in one process.
fn primecount(xs: &[u64]) -> Vec<u64> {
    primecount_with(xs, "")
}

/// primecount with `flags` on each x (one spawn of a shell for all of them).
fn primecount_with(xs: &[u64], flags: &str) -> Vec<u64> {
    let script: String = xs.iter().map(|x| format!("primecount {x} -t2 {flags}\n")).collect();
    let mut sh = Command::new("sh").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("sh (primecount is installed by scripts/test.sh)");
    sh.stdin.take().expect("stdin").write_all(script.as_bytes()).expect("write");
    let out = sh.wait_with_output().expect("primecount ran");
    let got: Vec<u64> = String::from_utf8_lossy(&out.stdout).lines().map(|l| l.trim().parse().expect("primecount prints a number")).collect();
    assert_eq!(got.len(), xs.len(), "primecount answered every x (is it installed?)");
    got
}

#[test]
fn pi_matches_primecount() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(20261206);
    let mut xs: Vec<u64> = Vec::new();
    for _ in 0..220 {
        let digits = rng.gen_range(8.0..12.0f64);
        xs.push(10f64.powf(digits) as u64 + rng.gen_range(0..1000));
    }
    for e in 8..=14 {
        xs.push(10u64.pow(e));
        xs.push(10u64.pow(e) - 1);
    }
    for e in 27..=46 {
        xs.push((1u64 << e) - 1);
        xs.push(1u64 << e);
        xs.push((1u64 << e) + 1);
    }
    xs.extend([4_294_967_295, 4_294_967_296, 4_294_967_311, 100_000_000 - 1, 100_000_000]);
    let want = primecount(&xs);
    let ctl = Control::unlimited();
    for (x, w) in xs.iter().zip(&want) {
        assert_eq!(pi(*x, &ctl).expect("unlimited"), *w, "pi({x})");
    }
    // Far from the tuned alphas: every part of the split still adds up.
    for (x, w) in xs.iter().zip(&want).filter(|(x, _)| **x > 1_000_000_000).take(12) {
        for (alpha_y, alpha_z) in [(1.0, 1.0), (3.0, 4.0), (30.0, 1.0), (8.0, 2.5)] {
            assert_eq!(pi_with_alphas(*x, alpha_y, alpha_z, &ctl).expect("unlimited"), *w, "pi({x}) with alphas {alpha_y}, {alpha_z}");
        }
    }
}

#[test]
fn counts_agree_with_primecount_and_the_sieve() {
    let ctl = Control::unlimited();
    let mut rng = rand::rngs::StdRng::seed_from_u64(6);
    // Wide ranges through pi: against primecount's pi at both ends.
    let mut ends = Vec::new();
    for _ in 0..20 {
        let b = rng.gen_range(1_000_000_000_000u64..100_000_000_000_000);
        let a = rng.gen_range(1..b / 2);
        assert!(prefers_pi(a, b));
        ends.push((a, b));
    }
    let xs: Vec<u64> = ends.iter().flat_map(|&(a, b)| [a - 1, b]).collect();
    let want = primecount(&xs);
    for (i, &(a, b)) in ends.iter().enumerate() {
        assert_eq!(count(a, b, &ctl).expect("unlimited"), want[2 * i + 1] - want[2 * i], "count({a}, {b})");
    }
    // Narrow ranges anywhere, up to 2^64 - 1: the sieve decides, pi where it
    // can check the sieve (below 10^13).
    for _ in 0..40 {
        let a = match rng.gen_range(0..3) {
            0 => rng.gen_range(100_000_000..10_000_000_000_000u64),
            1 => rng.gen_range(1u64 << 62..1 << 63),
            _ => u64::MAX - rng.gen_range(0..1_000_000_000u64),
        };
        let b = a.saturating_add(rng.gen_range(0..2_000_000));
        let sieved = primes::count(a, b, &ctl).expect("unlimited");
        assert_eq!(count(a, b, &ctl).expect("unlimited"), sieved, "count({a}, {b})");
        if b < 10_000_000_000_000 {
            assert_eq!(pi(b, &ctl).expect("unlimited") - pi(a - 1, &ctl).expect("unlimited"), sieved, "pi at [{a}, {b}]");
        }
    }
}

#[test]
fn a_cancelled_pi_stops_and_progress_only_grows() {
    use std::sync::{Arc, Mutex};
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let ctl = Control::unlimited().with_progress(move |p| log.lock().expect("lock").push(p));
    assert_eq!(pi(1_000_000_000_000_000, &ctl).expect("unlimited"), 29_844_570_422_669);
    let seen = seen.lock().expect("lock");
    assert!(seen.len() > 20, "{} reports", seen.len());
    assert!(seen.windows(2).all(|w| w[0] <= w[1] + 1e-12), "progress never goes back");
    assert!(seen.last().is_some_and(|&p| p > 0.99));
    let ctl = Control::unlimited();
    ctl.cancel();
    assert_eq!(pi(u64::MAX, &ctl), Err(crunch_compute::Stop::Cancelled));
}

#[test]
fn nth_prime_matches_primecount() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(40);
    let mut ns: Vec<u64> = (0..40).map(|_| 10f64.powf(rng.gen_range(0.0..11.0)) as u64 + rng.gen_range(1..100)).collect();
    ns.extend([5_761_455, 5_761_456, 4_118_054_813, 4_118_054_814]);
    let want = primecount_with(&ns, "-n");
    let ctl = Control::unlimited();
    for (n, w) in ns.iter().zip(&want) {
        assert_eq!(nth_prime(*n, &ctl).expect("unlimited"), *w, "prime number {n}");
    }
}
