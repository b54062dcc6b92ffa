//! The prime-range kernel against primesieve (Debian package; scripts/test.sh
//! installs it) and the known values of pi(10^k).

use std::process::Command;

use crunch_compute::primes::{count, count_parallel, for_each_prime};
use crunch_compute::Control;
use rand::{Rng, SeedableRng};

fn primesieve(args: &[String]) -> String {
    let out = Command::new("primesieve")
        .args(args)
        .output()
        .expect("primesieve must be installed (scripts/test.sh installs the Debian package)");
    assert!(out.status.success(), "primesieve {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn pi_of_powers_of_ten_up_to_10_10() {
    let known = [0u64, 4, 25, 168, 1229, 9592, 78_498, 664_579, 5_761_455, 50_847_534, 455_052_511];
    let ctl = Control::unlimited();
    for (k, &pi) in known.iter().enumerate() {
        let n = 10u64.pow(k as u32);
        assert_eq!(count_parallel(0, n, 8, &ctl), Ok(pi), "pi(10^{k})");
    }
}

#[test]
fn counts_agree_with_primesieve_on_random_ranges() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let ctl = Control::unlimited();
    for _ in 0..40 {
        let magnitude = rng.gen_range(1..=19u32);
        let lo: u64 = rng.gen_range(0..10u64.pow(magnitude.min(19)));
        let hi = lo.saturating_add(rng.gen_range(0..20_000_000));
        let theirs: u64 = primesieve(&[lo.to_string(), hi.to_string(), "-q".into()]).trim().parse().expect("a count");
        assert_eq!(count(lo, hi, &ctl), Ok(theirs), "[{lo}, {hi}]");
    }
}

#[test]
fn lists_agree_with_primesieve_on_random_small_ranges() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(12);
    let ctl = Control::unlimited();
    for _ in 0..40 {
        let digits = rng.gen_range(1..=18);
        let lo: u64 = rng.gen_range(0..10u64.pow(digits));
        let hi = lo + rng.gen_range(0..200_000);
        let theirs: Vec<u64> = primesieve(&[lo.to_string(), hi.to_string(), "-p".into()])
            .lines()
            .map(|l| l.parse().expect("a prime per line"))
            .collect();
        let mut ours = Vec::new();
        for_each_prime(lo, hi, &ctl, |s| ours.extend_from_slice(s)).expect("not stopped");
        assert_eq!(ours, theirs, "[{lo}, {hi}]");
    }
}
