//! `crunch-factor`: factors the numbers given as arguments, or one per line on
//! standard input, printing them as GNU coreutils `factor` does
//! (`360: 2 2 2 3 3 5`). Used by the benchmark and cross-check scripts so both
//! tools see the same inputs in one run.

use std::io::{BufRead, BufWriter, Write};
use std::str::FromStr;

use crunch_compute::factor::{factorize, factorize_u64};
use crunch_compute::Control;
use num_bigint::BigUint;

fn line_for(text: &str, out: &mut impl Write) -> std::io::Result<()> {
    let text = text.trim();
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
        println!("usage: crunch-factor [N...]   (numbers from standard input when none given)");
        return Ok(());
    }
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    if args.is_empty() {
        for line in std::io::stdin().lock().lines() {
            line_for(&line?, &mut out)?;
        }
    } else {
        for a in &args {
            line_for(a, &mut out)?;
        }
    }
    out.flush()
}
