//! `crunch-factor`: factors the numbers given as arguments, or one per line on
//! standard input, printing them as GNU coreutils `factor` does
//! (`360: 2 2 2 3 3 5`). Used by the benchmark and cross-check scripts so both
//! tools see the same inputs in one run.

use std::io::{BufRead, BufWriter, Write};
use std::str::FromStr;

use crunch_compute::factor::{factorize, factorize_u64};
use crunch_compute::Control;
use num_bigint::BigUint;

fn line_for(text: &str, out: &mut impl Write, timed: bool, budget: Option<std::time::Duration>) -> std::io::Result<()> {
    let text = text.trim();
    if timed {
        // `--time`: "N: p q ... # <ms> ms <method,...>", for the benchmark
        // scripts; a run the budget stopped ends "... stopped <composite,...>".
        let Ok(n) = BigUint::from_str(text) else { return Ok(()) };
        let started = std::time::Instant::now();
        let ctl = match budget {
            Some(b) => Control::unlimited().with_deadline(started + b),
            None => Control::unlimited(),
        };
        let f = factorize(&n, &ctl);
        let ms = started.elapsed().as_secs_f64() * 1e3;
        write!(out, "{n}:")?;
        for pf in &f.factors {
            for _ in 0..pf.e {
                write!(out, " {}", pf.p)?;
            }
        }
        let methods: Vec<&str> = f.factors.iter().map(|pf| pf.method.as_str()).collect();
        write!(out, " # {ms:.3} ms {}", methods.join(","))?;
        if f.stopped.is_some() {
            let left: Vec<String> = f.unfactored.iter().map(|c| c.to_string()).collect();
            write!(out, " stopped {}", left.join(","))?;
        }
        writeln!(out)?;
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
        println!("usage: crunch-factor [--time] [N...]   (numbers from standard input when none given;\n       --time adds each number's milliseconds and methods, --time --budget S stops each after S seconds)\n       crunch-factor --ecm-curve B1 CURVES N   (one thread: milliseconds per ECM curve)");
        return Ok(());
    }
    if args.first().is_some_and(|a| a == "--ecm-curve") {
        return ecm_curves(&args[1..]);
    }
    let timed = args.first().is_some_and(|a| a == "--time");
    let mut args: Vec<String> = args.into_iter().filter(|a| a != "--time").collect();
    let mut budget = None;
    if let Some(i) = args.iter().position(|a| a == "--budget") {
        let secs = args.get(i + 1).and_then(|s| s.parse::<f64>().ok()).filter(|s| *s > 0.0);
        let Some(secs) = secs else { return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "--budget takes seconds")) };
        budget = Some(std::time::Duration::from_secs_f64(secs));
        args.drain(i..i + 2);
    }
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    if args.is_empty() {
        for line in std::io::stdin().lock().lines() {
            line_for(&line?, &mut out, timed, budget)?;
        }
    } else {
        for a in &args {
            line_for(a, &mut out, timed, budget)?;
        }
    }
    out.flush()
}

/// `--ecm-curve B1 CURVES N`: runs CURVES curves at B1 (B2 = 100 B1) on N, a
/// batch at a time (one curve, or eight side by side on AVX-512 IFMA) on one
/// thread, and prints the median milliseconds per curve, as GMP-ECM's
/// `ecm -c 1` is timed by `scripts/bench-factor-ecm.sh`.
fn ecm_curves(args: &[String]) -> std::io::Result<()> {
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidInput, "usage: crunch-factor --ecm-curve B1 CURVES N");
    let [b1, curves, n] = args else { return Err(bad()) };
    let (Ok(b1), Ok(curves), Ok(n)) = (b1.parse::<u64>(), curves.parse::<u64>(), BigUint::from_str(n)) else { return Err(bad()) };
    let mut times: Vec<f64> = Vec::new();
    let mut found = 0;
    // The first batch builds the tables of B1 (kept for the others): untimed.
    crunch_compute::factor::ecm_mp::one_batch(&n, b1, 6);
    let (mut k, mut ran) = (7, 0);
    while ran < curves.max(1) {
        let started = std::time::Instant::now();
        let (batch, factor) = crunch_compute::factor::ecm_mp::one_batch(&n, b1, k);
        let ms = started.elapsed().as_secs_f64() * 1e3 / f64::from(batch);
        found += usize::from(factor.is_some());
        times.extend(std::iter::repeat_n(ms, batch as usize));
        k += u64::from(batch);
        ran += u64::from(batch);
    }
    times.sort_by(f64::total_cmp);
    println!("{:.3} ms per curve ({} curves, {found} batches found a factor)", times[times.len() / 2], times.len());
    Ok(())
}
