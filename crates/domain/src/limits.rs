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
}

impl Limits {
    /// Default: 300 digits, comfortably above 2^512 (155 digits).
    pub const DEFAULT_FACTORIZE_MAX_DIGITS: usize = 300;
}

impl Default for Limits {
    fn default() -> Self {
        Self { factorize_max_digits: Self::DEFAULT_FACTORIZE_MAX_DIGITS }
    }
}
