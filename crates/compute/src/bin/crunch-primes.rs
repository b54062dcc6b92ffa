//! `crunch-primes`: the prime-range kernel from the command line, for the
//! benchmark script (`scripts/bench-primes.sh`) and for checking by hand.
//!
//!   crunch-primes count LO HI [THREADS]   prints the number of primes in [LO, HI]
//!   crunch-primes list LO HI              prints the primes in [LO, HI], one per line
//!   crunch-primes pi X [THREADS] [ALPHA_Y] [ALPHA_Z]
//!                                       prints pi(X) by the combinatorial method

use std::io::{BufWriter, Write};

use crunch_compute::pi::{alphas, pi_with_alphas};
use crunch_compute::primes::{count, count_parallel, for_each_prime};
use crunch_compute::Control;

fn parse(s: &str) -> u64 {
    // accepts 1e9-style and plain integers
    if let Some((m, e)) = s.split_once('e') {
        let m: u64 = m.parse().unwrap_or_else(|_| usage());
        let e: u32 = e.parse().unwrap_or_else(|_| usage());
        return m.checked_mul(10u64.checked_pow(e).unwrap_or_else(|| usage())).unwrap_or_else(|| usage());
    }
    s.parse().unwrap_or_else(|_| usage())
}

fn usage() -> ! {
    eprintln!("usage: crunch-primes count LO HI [THREADS] | crunch-primes list LO HI | crunch-primes pi X [THREADS] [ALPHA_Y] [ALPHA_Z]");
    std::process::exit(2)
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ctl = Control::unlimited();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["count", lo, hi] => println!("{}", count(parse(lo), parse(hi), &ctl).unwrap_or(0)),
        ["count", lo, hi, t] => {
            let threads: usize = t.parse().unwrap_or_else(|_| usage());
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().map_err(std::io::Error::other)?;
            let n = pool.install(|| count_parallel(parse(lo), parse(hi), threads * 2, &ctl)).unwrap_or(0);
            println!("{n}");
        }
        ["list", lo, hi] => {
            let out = std::io::stdout();
            let mut w = BufWriter::with_capacity(1 << 16, out.lock());
            let mut res = Ok(());
            let _ = for_each_prime(parse(lo), parse(hi), &ctl, |ps| {
                if res.is_ok() {
                    let mut buf = itoa::Buffer::new();
                    for &p in ps {
                        let _ = w.write_all(buf.format(p).as_bytes());
                        res = w.write_all(b"\n");
                    }
                }
            });
            res?;
            w.flush()?;
        }
        ["pi", x, rest @ ..] => {
            let x = parse(x);
            let threads: usize = rest.first().map_or(Ok(0), |t| t.parse()).unwrap_or_else(|_| usage());
            let (ay, az) = alphas(x);
            let ay: f64 = rest.get(1).map_or(Ok(ay), |a| a.parse()).unwrap_or_else(|_| usage());
            let az: f64 = rest.get(2).map_or(Ok(az), |a| a.parse()).unwrap_or_else(|_| usage());
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().map_err(std::io::Error::other)?;
            println!("{}", pool.install(|| pi_with_alphas(x, ay, az, &ctl)).unwrap_or(0));
        }
        _ => usage(),
    }
    Ok(())
}
