//! Criterion benches of the factorization kernel on the benchmark's input
//! classes (random 64-bit integers; semiprimes of two 32-bit primes; a 100-bit
//! composite of 40-bit primes).

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use crunch_compute::factor::{factorize, factorize_u64, small::is_prime_u64};
use crunch_compute::Control;
use num_bigint::BigUint;
use rand::{Rng, SeedableRng};

fn prime(rng: &mut impl Rng, bits: u32) -> u64 {
    loop {
        let p = rng.gen_range(1u64 << (bits - 1)..1u64 << bits) | 1;
        if is_prime_u64(p) {
            return p;
        }
    }
}

fn benches(c: &mut Criterion) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let randoms: Vec<u64> = (0..1000).map(|_| rng.gen()).collect();
    let semis: Vec<u64> = (0..100).map(|_| prime(&mut rng, 32) * prime(&mut rng, 32)).collect();
    let big: Vec<BigUint> = (0..10)
        .map(|_| BigUint::from(prime(&mut rng, 40)) * prime(&mut rng, 40) * prime(&mut rng, 20))
        .collect();
    c.bench_function("factor 1000 random u64", |b| b.iter(|| randoms.iter().map(|&n| factorize_u64(black_box(n)).len()).sum::<usize>()));
    c.bench_function("factor 100 semiprimes 32x32 bits", |b| b.iter(|| semis.iter().map(|&n| factorize_u64(black_box(n)).len()).sum::<usize>()));
    let mut g = c.benchmark_group("big");
    g.sample_size(10);
    g.bench_function("factor 10 composites 40x40x20 bits", |b| {
        b.iter(|| big.iter().map(|n| factorize(black_box(n), &Control::unlimited()).factors.len()).sum::<usize>())
    });
    g.finish();
}

criterion_group!(factor_benches, benches);
criterion_main!(factor_benches);
