//! Input limits. Every limit is explicit and configurable; the defaults are the
//! documented values in `.env.template`.

use serde::{Deserialize, Serialize};

/// Limits applied when a job's parameters are parsed, by the gateway at
/// submission and again by the worker when a message arrives (a message that
/// breaks them is dead-lettered, never run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Largest number of decimal digits accepted for `factorize.n`.
    pub factorize_max_digits: usize,
    /// Widest `[from, to]` accepted for `primes` in list mode (`to - from`).
    pub primes_list_max_width: u64,
    /// Widest `[from, to]` accepted for `primes` in count mode.
    pub primes_count_max_width: u64,
    /// Most list pages one `scrape_hotels` job may ask for.
    pub scrape_max_pages: u32,
}

impl Limits {
    /// Default: 300 digits, comfortably above 2^512 (155 digits).
    pub const DEFAULT_FACTORIZE_MAX_DIGITS: usize = 300;
    /// Default: 10^9 (about 50 million primes near 10^9).
    pub const DEFAULT_PRIMES_LIST_MAX_WIDTH: u64 = 1_000_000_000;
    /// Default: no limit. Wide counts are pi(to) - pi(from - 1) by the
    /// combinatorial method: pi(2^64 - 1) in minutes on two cores.
    pub const DEFAULT_PRIMES_COUNT_MAX_WIDTH: u64 = u64::MAX;
    pub const DEFAULT_SCRAPE_MAX_PAGES: u32 = 10;
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            factorize_max_digits: Self::DEFAULT_FACTORIZE_MAX_DIGITS,
            primes_list_max_width: Self::DEFAULT_PRIMES_LIST_MAX_WIDTH,
            primes_count_max_width: Self::DEFAULT_PRIMES_COUNT_MAX_WIDTH,
            scrape_max_pages: Self::DEFAULT_SCRAPE_MAX_PAGES,
        }
    }
}
