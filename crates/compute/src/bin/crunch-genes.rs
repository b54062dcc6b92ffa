//! `crunch-genes`: the gene-file parser from the command line, for the
//! benchmark script (`scripts/bench-genes.sh`) and for checking files by hand.
//!
//!   crunch-genes stats FILE [fasta|fastq|csv] [THREADS]
//!       parses, validates and counts (length, GC) like the `genes` job, without
//!       storing; prints the totals and the throughput. THREADS parse threads
//!       (default 1); the file is read on one more thread. `-` reads stdin.
//!   crunch-genes generate FILE MIB [SEED]
//!       writes a random FASTA of about MIB MiB: records of 100 to 20,000
//!       bases in 60-column lines, ACGT with a few N, descriptive headers.

use std::io::{BufWriter, Read, Write};
use std::time::Instant;

use crunch_compute::genes::{parse_stream, Format, ParseOptions};
use crunch_compute::Control;
use rand::{Rng, SeedableRng};

fn usage() -> ! {
    eprintln!("usage: crunch-genes stats FILE [fasta|fastq|csv] [THREADS] | crunch-genes generate FILE MIB [SEED]");
    std::process::exit(2)
}

fn generate(path: &str, mib: u64, seed: u64) -> std::io::Result<()> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let target = mib << 20;
    let (mut written, mut i) = (0u64, 0u64);
    let mut line = Vec::with_capacity(61);
    while written < target {
        let header = format!(">gene_{i} Homo sapiens synthetic locus {i} chromosome {} length-class {}\n", rng.gen_range(1..23), i % 7);
        w.write_all(header.as_bytes())?;
        written += header.len() as u64;
        let len = rng.gen_range(100..20_000u64);
        let mut left = len;
        while left > 0 {
            let n = left.min(60) as usize;
            line.clear();
            for _ in 0..n {
                let r: u8 = rng.gen_range(0..200);
                line.push(match r { 0 => b'N', _ => b"ACGT"[(r & 3) as usize] });
            }
            line.push(b'\n');
            w.write_all(&line)?;
            written += line.len() as u64;
            left -= n as u64;
        }
        i += 1;
    }
    w.flush()
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["generate", path, mib, rest @ ..] => {
            let mib = mib.parse().unwrap_or_else(|_| usage());
            let seed = rest.first().map_or(Ok(1), |s| s.parse()).unwrap_or_else(|_| usage());
            generate(path, mib, seed)
        }
        ["stats", path, rest @ ..] => {
            let format = match rest.first().copied() {
                None | Some("fasta") => Format::Fasta,
                Some("fastq") => Format::Fastq,
                Some("csv") => Format::Csv,
                Some(_) => usage(),
            };
            let threads: usize = rest.get(1).map_or(Ok(1), |t| t.parse()).unwrap_or_else(|_| usage());
            let input: Box<dyn Read + Send> = if *path == "-" { Box::new(std::io::stdin()) } else { Box::new(std::fs::File::open(path)?) };
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().map_err(std::io::Error::other)?;
            let started = Instant::now();
            let mut opts = ParseOptions::new(format);
            opts.chunks_per_batch = 2 * threads;
            let stats = pool
                .install(|| parse_stream(input, &opts, &Control::unlimited(), |_, _| Ok(())))
                .map_err(std::io::Error::other)?;
            let secs = started.elapsed().as_secs_f64();
            let gc = if stats.bases > 0 { stats.gc_bases as f64 / stats.bases as f64 } else { 0.0 };
            println!(
                "records {} valid {} invalid {} bases {} gc {:.4} min_len {} max_len {} bytes {} seconds {:.3} GB/s {:.2}",
                stats.records, stats.valid, stats.invalid, stats.bases, gc,
                stats.min_length.unwrap_or(0), stats.max_length.unwrap_or(0), stats.bytes, secs, stats.bytes as f64 / secs / 1e9
            );
            Ok(())
        }
        _ => usage(),
    }
}
