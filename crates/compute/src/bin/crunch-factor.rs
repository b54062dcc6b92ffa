//! `crunch-factor`: factors the numbers given as arguments, or one per line on
//! standard input, printing them as GNU coreutils `factor` does
//! (`360: 2 2 2 3 3 5`). Used by the benchmark and cross-check scripts so both
//! tools see the same inputs in one run.

use std::io::{BufRead, BufWriter, Write};
use std::str::FromStr;

use crunch_compute::factor::{factorize, factorize_u64};
use crunch_compute::Control;
use num_bigint::BigUint;

fn line_for(text: &str, out: &mut impl Write, timed: bool) -> std::io::Result<()> {
    let text = text.trim();
    if timed {
        // `--time`: "N: p q ... # <ms> ms <method,...>", for the benchmark scripts.
        let Ok(n) = BigUint::from_str(text) else { return Ok(()) };
        let started = std::time::Instant::now();
        let f = factorize(&n, &Control::unlimited());
        let ms = started.elapsed().as_secs_f64() * 1e3;
        write!(out, "{n}:")?;
        for pf in &f.factors {
            for _ in 0..pf.e {
                write!(out, " {}", pf.p)?;
            }
        }
        let methods: Vec<&str> = f.factors.iter().map(|pf| pf.method.as_str()).collect();
        writeln!(out, " # {ms:.3} ms {}", methods.join(","))?;
        return out.flush();
    }
    if text.is_empty() {
        return Ok(());
    }
    if let Ok(v) = text.parse::<u64>() {
        write!(out, "{v}:")?;
        for (p, e) in factorize_u64(v) {
            for _ in 0..e {
                write!(out, " {p}")?;
            }
        }
        return writeln!(out);
    }
    match BigUint::from_str(text) {
        Ok(n) => {
            let f = factorize(&n, &Control::unlimited());
            write!(out, "{n}:")?;
            for pf in &f.factors {
                for _ in 0..pf.e {
                    write!(out, " {}", pf.p)?;
                }
            }
            writeln!(out)
        }
        Err(_) => {
            eprintln!("crunch-factor: '{text}' is not a valid positive integer");
            Ok(())
        }
    }
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("usage: crunch-factor [--time] [N...]   (numbers from standard input when none given;\n       --time adds each number's milliseconds and methods)");
        return Ok(());
    }
    let timed = args.first().is_some_and(|a| a == "--time");
    let args: Vec<String> = args.into_iter().filter(|a| a != "--time").collect();
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    if args.is_empty() {
        for line in std::io::stdin().lock().lines() {
            line_for(&line?, &mut out, timed)?;
        }
    } else {
        for a in &args {
            line_for(a, &mut out, timed)?;
        }
    }
    out.flush()
}
