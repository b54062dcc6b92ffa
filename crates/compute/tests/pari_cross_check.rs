//! Cross-check against PARI/GP (`gp`, Debian package pari-gp, installed by
//! scripts/test.sh):
//! - 1,000+ seeded composites of 64 to 160 bits: semiprimes (balanced and
//!   not), prime powers, numbers with many small factors, Carmichael numbers
//!   and squares of primes;
//! - 1,000 seeded products of primes of mixed sizes up to 300 digits (small
//!   primes, primes of 10 to 15 digits for ECM, squares, one large prime),
//!   made by PARI: the primes it multiplied are the expected answer.
//!
//! Every factorization must equal PARI's, multiply back and consist of primes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::process::{Command, Stdio};

use crunch_compute::factor::{big::is_prime_big, factorize};
use crunch_compute::Control;
use num_bigint::{BigUint, RandBigInt};
use num_traits::One;
use rand::{Rng, SeedableRng};

fn prime(rng: &mut impl Rng, bits: u64) -> BigUint {
    loop {
        let mut p = rng.gen_biguint(bits);
        p.set_bit(bits - 1, true);
        p.set_bit(0, true);
        if is_prime_big(&p) {
            return p;
        }
    }
}

/// Carmichael numbers of Chernick's form (6k+1)(12k+1)(18k+1).
fn carmichaels(rng: &mut impl Rng, count: usize) -> Vec<BigUint> {
    let mut out = Vec::new();
    while out.len() < count {
        let k: u64 = rng.gen_range(1u64 << 18..1u64 << 40);
        let fs = [6 * k + 1, 12 * k + 1, 18 * k + 1].map(BigUint::from);
        if fs.iter().all(is_prime_big) {
            out.push(fs.iter().product());
        }
    }
    out
}

fn inputs() -> Vec<BigUint> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(20261125);
    let mut v = Vec::new();
    // Semiprimes: unbalanced (a small factor), 64..160 bits.
    for _ in 0..420 {
        let total = rng.gen_range(64..=160u64);
        let small = rng.gen_range(20..=(total / 2).min(48));
        v.push(prime(&mut rng, small) * prime(&mut rng, total - small));
    }
    // Balanced semiprimes: 64..128 bits, and a few 130..160 (the sieve's work).
    for _ in 0..250 {
        let total = rng.gen_range(64..=128u64);
        v.push(prime(&mut rng, total / 2) * prime(&mut rng, total - total / 2));
    }
    for _ in 0..12 {
        let total = rng.gen_range(130..=160u64);
        v.push(prime(&mut rng, total / 2) * prime(&mut rng, total - total / 2));
    }
    // Prime powers and squares of primes.
    for _ in 0..100 {
        let k = rng.gen_range(2..=5u32);
        let bits = rng.gen_range(64 / k as u64 + 1..=160 / k as u64);
        v.push(prime(&mut rng, bits).pow(k));
    }
    for _ in 0..80 {
        let bits = rng.gen_range(33..=80u64);
        v.push(prime(&mut rng, bits).pow(2));
    }
    // Many small factors times a larger prime.
    for _ in 0..120 {
        let mut n = BigUint::one();
        let target = rng.gen_range(64..=140u64);
        while n.bits() < target {
            let bits = rng.gen_range(2..=24u64);
            n *= prime(&mut rng, bits);
        }
        let bits = rng.gen_range(8..=20u64);
        v.push(n * prime(&mut rng, bits));
    }
    v.extend(carmichaels(&mut rng, 40));
    v.retain(|n| (64..=160).contains(&n.bits()));
    v
}

/// Runs `script` in one `gp` process: its lines `n: p q ...` as
/// `(n, [p, q, ...])`.
fn gp(script: &str) -> Vec<(String, Vec<String>)> {
    let mut child = Command::new("gp")
        .args(["-q", "-f", "--default", "parisize=400000000"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("PARI/GP (`gp`) must be installed (scripts/test.sh installs pari-gp)");
    child.stdin.take().expect("stdin").write_all(script.as_bytes()).expect("write");
    let out = child.wait_with_output().expect("gp ran");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(n, fs)| (n.trim().to_owned(), fs.split_whitespace().map(str::to_owned).collect()))
        .collect()
}

/// PARI/GP's factorizations, `n -> [p, p, q, ...]`, in one run.
fn pari(inputs: &[BigUint]) -> BTreeMap<String, Vec<String>> {
    let mut script = String::new();
    for n in inputs {
        writeln!(script, "f = factor({n}); s = \"{n}:\"; for (i = 1, #f~, for (j = 1, f[i, 2], s = Str(s, \" \", f[i, 1]))); print(s)").expect("a String takes writes");
    }
    gp(&script).into_iter().collect()
}

#[test]
fn factorizations_match_pari_gp_from_64_to_160_bits() {
    let inputs = inputs();
    assert!(inputs.len() >= 1000, "{} inputs", inputs.len());
    let theirs = pari(&inputs);
    assert_eq!(theirs.len(), inputs.len(), "gp answered every input");
    let mut methods: BTreeMap<&str, usize> = BTreeMap::new();
    for n in &inputs {
        let f = factorize(n, &Control::unlimited());
        assert!(f.unfactored.is_empty(), "{n} left unfactored");
        let mut ours: Vec<BigUint> = Vec::new();
        for pf in &f.factors {
            assert!(is_prime_big(&pf.p), "{} is not prime (from {n})", pf.p);
            *methods.entry(pf.method.as_str()).or_default() += 1;
            ours.extend(std::iter::repeat_n(pf.p.clone(), pf.e as usize));
        }
        assert_eq!(&ours.iter().product::<BigUint>(), n, "product of the factors of {n}");
        let ours: Vec<String> = ours.iter().map(|p| p.to_str_radix(10)).collect();
        assert_eq!(Some(&ours), theirs.get(&n.to_str_radix(10)), "{n}");
    }
    // The sieve did take part.
    assert!(methods.get("siqs").copied().unwrap_or(0) > 0, "{methods:?}");
}

/// 1,000 products of primes of mixed sizes, 25 to 300 digits, made by PARI's
/// `randomprime` (seeded): `(n, its primes in order)`. PARI's own `factor`
/// needs over ten minutes for the set (its ECM on 300-digit numbers), so the
/// expected answer is the construction.
fn big_products_by_pari() -> Vec<(BigUint, Vec<String>)> {
    const SCRIPT: &str = r#"
setrand(2026120623);
rp(d) = randomprime([10^(d-1), 10^d - 1]);
{for (i = 1, 1000,
  t = 25 + random(276);
  v = [];
  for (j = 1, random(5), v = concat(v, rp(1 + random(9))));
  for (j = 1, random(3), v = concat(v, rp(10 + random(6))));
  if (random(10) == 0, p = rp(2 + random(12)); v = concat(v, [p, p]));
  d = t - #digits(vecprod(v));
  if (d >= 2, v = concat(v, rp(d)));
  v = vecsort(v); s = Str(vecprod(v), ":"); for (k = 1, #v, s = Str(s, " ", v[k])); print(s))}
"#;
    gp(SCRIPT).into_iter().map(|(n, ps)| (n.parse().expect("gp prints integers"), ps)).collect()
}

#[test]
fn factorizations_of_pari_products_up_to_300_digits_are_exact() {
    use rayon::prelude::*;
    let cases = big_products_by_pari();
    assert_eq!(cases.len(), 1000, "gp made every input");
    assert!(cases.iter().any(|(n, _)| n.to_string().len() >= 280), "some inputs near 300 digits");
    let ecm = cases
        .par_iter()
        .map(|(n, theirs)| {
            let f = factorize(n, &Control::unlimited());
            assert!(f.is_complete(), "{n} left unfactored");
            let mut ours: Vec<String> = Vec::new();
            for pf in &f.factors {
                assert!(is_prime_big(&pf.p), "{} is not prime (from {n})", pf.p);
                ours.extend(std::iter::repeat_n(pf.p.to_str_radix(10), pf.e as usize));
            }
            assert_eq!(&ours, theirs, "{n}");
            f.factors.iter().filter(|pf| pf.method == crunch_compute::factor::Method::Ecm).count()
        })
        .sum::<usize>();
    // ECM on multi-precision numbers did the splitting of the 10-15 digit primes.
    assert!(ecm > 300, "{ecm} factors found by ECM");
}
