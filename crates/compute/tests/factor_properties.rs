//! Property tests and a cross-check against GNU coreutils `factor`.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use crunch_compute::factor::{factorize, factorize_u64, small::is_prime_u64};
use crunch_compute::Control;
use num_bigint::BigUint;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};

fn ours(n: &BigUint) -> Vec<String> {
    let f = factorize(n, &Control::unlimited());
    assert!(f.is_complete(), "{n} not completely factored");
    f.factors.iter().flat_map(|pf| std::iter::repeat_n(pf.p.to_string(), pf.e as usize)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn u64_factors_multiply_back_and_are_prime(n in 1u64..) {
        let fs = factorize_u64(n);
        let product: u128 = fs.iter().map(|&(p, e)| (p as u128).pow(e)).product();
        prop_assert_eq!(product, n as u128);
        for w in fs.windows(2) {
            prop_assert!(w[0].0 < w[1].0, "sorted, distinct");
        }
        for (p, _) in fs {
            prop_assert!(is_prime_u64(p), "{} is not prime", p);
        }
    }

    #[test]
    fn big_factors_multiply_back(a in 2u64.., b in 2u64..1u64 << 40, c in 1u64..1u64 << 20) {
        let n = BigUint::from(a) * b * c;
        let f = factorize(&n, &Control::unlimited());
        prop_assert!(f.is_complete());
        let product: BigUint = f.factors.iter().map(|pf| pf.p.pow(pf.e)).product();
        prop_assert_eq!(product, n);
    }
}

/// Runs GNU `factor` once over all inputs: `n -> [p, p, q, ...]`.
fn gnu_factor(inputs: &[BigUint]) -> BTreeMap<String, Vec<String>> {
    let mut child = Command::new("factor")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("GNU coreutils `factor` must be installed (scripts/test.sh installs coreutils)");
    let mut stdin = child.stdin.take().expect("stdin");
    let text: String = inputs.iter().map(|n| format!("{n}\n")).collect();
    let writer = std::thread::spawn(move || stdin.write_all(text.as_bytes()));
    let out = child.wait_with_output().expect("factor ran");
    writer.join().expect("writer").expect("write");
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .filter_map(|l| {
            let (n, ps) = l.split_once(':')?;
            Some((n.to_owned(), ps.split_whitespace().map(str::to_owned).collect()))
        })
        .collect()
}

fn random_prime_below(rng: &mut impl Rng, bits: u32) -> u64 {
    loop {
        let p = rng.gen_range(2..1u64 << bits) | 1;
        if is_prime_u64(p) {
            return p;
        }
    }
}

#[test]
fn agrees_with_gnu_factor_on_10000_random_u64_and_composites_up_to_2_127() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xC0FFEE);
    let mut inputs: Vec<BigUint> = (0..10_000).map(|_| BigUint::from(rng.gen::<u64>() >> rng.gen_range(0..64))).collect();
    inputs.extend([0u64, 1, 2, 3, 4, u64::MAX, u64::MAX - 58].map(BigUint::from));
    // Composites below 2^127 built from primes below 2^40.
    let mut built = 0;
    while built < 300 {
        let mut n = BigUint::from(1u32);
        loop {
            let bits = rng.gen_range(2..=40);
            let p = random_prime_below(&mut rng, bits);
            let next = &n * p;
            if next.bits() > 127 {
                break;
            }
            n = next;
        }
        if n.bits() > 64 {
            inputs.push(n);
            built += 1;
        }
    }
    inputs.retain(|n| *n > BigUint::from(0u32));
    let gnu = gnu_factor(&inputs);
    assert_eq!(gnu.len(), inputs.iter().collect::<std::collections::BTreeSet<_>>().len());
    for n in &inputs {
        assert_eq!(&ours(n), gnu.get(&n.to_string()).expect("GNU output"), "n = {n}");
    }
}
