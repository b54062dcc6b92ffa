//! Crunch's CPU kernels. Pure functions of their input: no I/O, no async.
//! Long kernels take a [`Control`] and stop at their next checkpoint when it
//! says so (cancel or time budget), reporting what they had found.
//!
//! # Layout
//! - [`control`]: cancellation, deadline and progress reporting for kernels.
//! - [`factor`]: integer factorization (trial division, Pollard-Brent with
//!   Montgomery arithmetic on 64- and 128-bit words, ECM on those words,
//!   SIQS, BPSW-proven primes); [`factor::big`] chains the splitters.
//! - [`primes`]: prime ranges, counted or listed, by a segmented wheel sieve.
//! - [`pi`]: pi(x) for any x < 2^64 by the combinatorial method (Gourdon's
//!   variant of Deleglise-Rivat).
//! - [`genes`]: streaming FASTA, FASTQ and CSV parsers and their statistics.

pub mod control;
pub mod factor;
pub mod genes;
pub mod pi;
pub mod primes;

pub use control::{Control, Stop};
