//! The job kinds: one file per kind with its parameters (how they parse,
//! their canonical form, whether a job of the kind is quick) and its typed
//! result. [`job_kinds!`] below is the one list of kinds: it defines
//! [`JobKind`] and [`JobSpec`] from it.

pub mod check_url;
pub mod factorize;
pub mod genes;
pub mod nth_prime;
pub mod primes;
pub mod scrape_hotels;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::job::SpecError;
use crate::limits::Limits;

/// The parameters of one job kind. An instance holds only valid parameters:
/// [`Params::parse`] is its only constructor from outside the domain.
pub trait Params: Sized {
    /// Parses the kind's JSON parameters against the limits.
    fn parse(params: &serde_json::Value, limits: &Limits) -> Result<Self, SpecError>;

    /// The parameters in canonical form: what is stored, sent to workers and
    /// what identical submissions are recognised by.
    fn canonical(&self) -> serde_json::Value;

    /// Whether the job takes at most about a millisecond of CPU. Quick jobs
    /// have their own queue, taken by workers in batches (one database round
    /// trip and one ack for many jobs), so that a stream of small jobs is not
    /// paced by per-job overheads and never waits behind long ones.
    fn is_quick(&self) -> bool {
        false
    }

    /// The JSON Schema of the parameters under `limits`: every rule
    /// [`Params::parse`] enforces that JSON Schema can state (the others are
    /// in the descriptions).
    fn schema(limits: &Limits) -> serde_json::Value;
}

/// Defines [`JobKind`] and [`JobSpec`] from the list of kinds: a variant, its
/// name on the API, whether it waits on the network (I/O queue) or computes
/// (CPU queue), and its [`Params`] type.
macro_rules! job_kinds {
    ($($(#[doc = $doc:literal])* $variant:ident = $name:literal, $queue:ident, $params:ty;)+) => {
        /// The kinds of job Crunch runs.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[cfg_attr(feature = "diesel", derive(diesel::AsExpression, diesel::FromSqlRow), diesel(sql_type = diesel::sql_types::Text))]
        #[serde(rename_all = "snake_case")]
        pub enum JobKind {
            $($(#[doc = $doc])* $variant,)+
        }

        impl JobKind {
            pub const ALL: &'static [JobKind] = &[$(JobKind::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(JobKind::$variant => $name,)+
                }
            }

            /// The JSON Schema of the kind's parameters ([`Params::schema`]).
            pub fn params_schema(self, limits: &Limits) -> serde_json::Value {
                match self {
                    $(JobKind::$variant => <$params as Params>::schema(limits),)+
                }
            }

            /// I/O-bound kinds run from their own queue with their own
            /// concurrency limit, so a slow site never delays CPU jobs.
            pub fn is_io(self) -> bool {
                match self {
                    $(JobKind::$variant => job_kinds!(@io $queue),)+
                }
            }
        }

        /// A job's kind with its parsed parameters: built only by [`JobSpec::parse`].
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum JobSpec {
            $($variant($params),)+
        }

        impl JobSpec {
            fn parse_kind(kind: JobKind, params: &serde_json::Value, limits: &Limits) -> Result<Self, SpecError> {
                match kind {
                    $(JobKind::$variant => <$params as Params>::parse(params, limits).map(JobSpec::$variant),)+
                }
            }

            pub fn kind(&self) -> JobKind {
                match self {
                    $(JobSpec::$variant(_) => JobKind::$variant,)+
                }
            }

            /// The parameters in canonical form ([`Params::canonical`]).
            pub fn canonical_params(&self) -> serde_json::Value {
                match self {
                    $(JobSpec::$variant(p) => p.canonical(),)+
                }
            }

            /// Whether the job goes to the quick queue ([`Params::is_quick`]).
            pub fn is_quick(&self) -> bool {
                match self {
                    $(JobSpec::$variant(p) => p.is_quick(),)+
                }
            }
        }
    };
    (@io io) => { true };
    (@io cpu) => { false };
}

job_kinds! {
    /// Integer factorization: `{"n": "<decimal>"}`.
    Factorize = "factorize", cpu, factorize::FactorizeParams;
    /// Primes in a range: `{"from": .., "to": .., "mode": "list" | "count"}`.
    Primes = "primes", cpu, primes::PrimesParams;
    /// The n-th prime: `{"n": ..}`, 1 to pi(2^64 - 1).
    NthPrime = "nth_prime", cpu, nth_prime::NthPrimeParams;
    /// Check a URL: `{"url": .., "method"?, "retries"?, "timeout_ms"?}`.
    CheckUrl = "check_url", io, check_url::CheckUrlParams;
    /// Scrape hotel listings: `{"city" | "start_url", "pages"?, "details"?}`.
    ScrapeHotels = "scrape_hotels", io, scrape_hotels::ScrapeHotelsParams;
    /// Parse an uploaded gene file: `{"file_id": ..}` (started through
    /// `/api/v1/gene-files`).
    Genes = "genes", cpu, genes::GenesParams;
}

impl JobKind {
    /// The names of every kind, for error messages.
    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|k| k.as_str()).collect()
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobKind {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| SpecError::UnknownKind(s.chars().take(64).collect()))
    }
}

impl JobSpec {
    /// Parses a kind name and its JSON parameters against the limits.
    pub fn parse(kind: &str, params: &serde_json::Value, limits: &Limits) -> Result<Self, SpecError> {
        let kind = kind.parse::<JobKind>()?;
        if has_nul(params) {
            return Err(SpecError::param("params", "must not contain NUL characters (\\u0000) in any name or value"));
        }
        Self::parse_kind(kind, params, limits)
    }

    /// SHA-256 of owner, kind and canonical parameters: two submissions with the
    /// same key are the same request (a result cache, per owner).
    pub fn dedup_key(&self, owner: Uuid) -> Vec<u8> {
        let mut h = Sha256::new();
        h.update(owner.as_bytes());
        h.update(self.kind().as_str().as_bytes());
        h.update([0]);
        // serde_json writes object keys sorted (no preserve_order), so this is canonical.
        h.update(self.canonical_params().to_string().as_bytes());
        h.finalize().to_vec()
    }
}

/// Whether a NUL character hides in any key or string of `v` (PostgreSQL
/// text and jsonb cannot store one; such input is refused up front).
fn has_nul(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(a) => a.iter().any(has_nul),
        serde_json::Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// The JSON Schema of a decimal integer from 0 to `max`, as a JSON number
/// or a string of at most 64 digits (leading zeros allowed).
pub(crate) fn u64_schema(max: u64, description: &str) -> serde_json::Value {
    serde_json::json!({
        "description": description,
        "oneOf": [
            {"type": "integer", "minimum": 0, "maximum": max.min(MAX_JSON_INT)},
            {"type": "string", "maxLength": 64, "pattern": decimal_pattern(max)},
        ],
    })
}

/// The end of a pattern that matches a whole string: `$` alone also matches
/// before a final newline (in Python's and PCRE's reading, which generators
/// of test data follow).
pub const END: &str = "(?!\\n)$";

/// A pattern of the decimal integers from 0 to `max`, leading zeros allowed.
pub fn decimal_pattern(max: u64) -> String {
    format!("^0*{}{END}", decimal_at_most(max))
}

/// A regular expression (no anchors) of the decimal integers from 0 to
/// `max` without leading zeros: shorter numbers, then those of `max`'s length
/// digit by digit (a smaller digit at position i, then any digits).
fn decimal_at_most(max: u64) -> String {
    let digits: Vec<u8> = max.to_string().bytes().map(|b| b - b'0').collect();
    let n = digits.len();
    let mut alternatives = vec![format!("0|[1-9][0-9]{{0,{}}}", n.saturating_sub(2))];
    if n == 1 {
        return format!("[0-{}]", digits[0]);
    }
    for i in 0..n {
        let low = if i == 0 { 1 } else { 0 };
        if digits[i] > low {
            let prefix: String = digits[..i].iter().map(|d| char::from(b'0' + d)).collect();
            alternatives.push(format!("{prefix}[{low}-{}][0-9]{{{}}}", digits[i] - 1, n - i - 1));
        }
    }
    alternatives.push(max.to_string());
    format!("(?:{})", alternatives.join("|"))
}

/// The largest integer a JSON number carries exactly in every client
/// (2^53): larger ones are written as decimal strings.
pub const MAX_JSON_INT: u64 = 1 << 53;

/// A JSON number that is a whole number from 0 to [`MAX_JSON_INT`], written
/// with or without a fraction of zero (`5` or `5.0`: both are integers to
/// JSON Schema).
pub fn json_uint(v: &serde_json::Value) -> Option<u64> {
    let n = v.as_number()?;
    let value = match n.as_u64() {
        Some(u) => u,
        None => {
            let f = n.as_f64()?;
            if f.fract() != 0.0 || !(0.0..=MAX_JSON_INT as f64).contains(&f) {
                return None;
            }
            f as u64
        }
    };
    (value <= MAX_JSON_INT).then_some(value)
}

/// An unexpected field of a kind's params, named in `field`'s error.
pub(crate) fn no_extra_fields(obj: &serde_json::Map<String, serde_json::Value>, allowed: &[&str], field: &'static str) -> Result<(), SpecError> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        None => Ok(()),
        Some(extra) => Err(SpecError::InvalidParam {
            field,
            message: match allowed {
                [only] => format!("is the only parameter; unexpected field '{}' (the parameter is {only})", extra.chars().take(64).collect::<String>()),
                _ => format!("is one of {}; unexpected field '{}'", allowed.join(", "), extra.chars().take(64).collect::<String>()),
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(params: serde_json::Value) -> Result<JobSpec, SpecError> {
        JobSpec::parse("factorize", &params, &Limits::default())
    }

    #[test]
    fn unknown_kind_lists_the_valid_ones() {
        let err = JobSpec::parse("mine_bitcoin", &json!({}), &Limits::default()).expect_err("unknown");
        assert_eq!(err.code(), "unknown_kind");
        assert!(err.message().contains("factorize") && err.message().contains("primes"));
    }

    #[test]
    fn dedup_key_depends_on_owner_and_canonical_params() {
        let a = parse(json!({"n": "360"})).expect("valid");
        let b = parse(json!({"n": "0360"})).expect("valid");
        let (o1, o2) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(a.dedup_key(o1), b.dedup_key(o1));
        assert_ne!(a.dedup_key(o1), a.dedup_key(o2));
    }

    #[test]
    fn decimal_patterns_match_exactly_the_numbers_up_to_the_maximum() {
        for max in [0u64, 7, 9, 10, 99, 100, 305, 1_000_000, u64::MAX] {
            let re = regex_lite(&decimal_pattern(max));
            for v in [0u64, 1, 7, 8, 9, 10, 11, 99, 100, 101, 304, 305, 306, 999_999, 1_000_000, 1_000_001, u64::MAX - 1, u64::MAX] {
                assert_eq!(re(&v.to_string()), v <= max, "{v} against {max}");
                assert_eq!(re(&format!("00{v}")), v <= max, "00{v} against {max}");
            }
            assert!(!re(&format!("{max}0")) || max == 0);
            assert!(!re(""));
        }
        assert!(!regex_lite(&decimal_pattern(u64::MAX))("18446744073709551616"));
    }

    /// A matcher of the few regular expressions [`decimal_at_most`] writes
    /// (alternatives of literal digits, classes and counted repeats), by
    /// trying every alternative: enough for a test without a regex crate.
    fn regex_lite(pattern: &str) -> impl Fn(&str) -> bool {
        let body = pattern.trim_start_matches("^0*").trim_end_matches(END).to_owned();
        let body = body.strip_prefix("(?:").and_then(|b| b.strip_suffix(')')).unwrap_or(&body).to_owned();
        move |text: &str| {
            // Leading zeros are the pattern's 0*: try every split.
            (0..=text.len()).any(|z| text[..z].bytes().all(|b| b == b'0') && body.split('|').any(|alt| matches_alt(alt, &text[z..])))
        }
    }

    fn matches_alt(alt: &str, text: &str) -> bool {
        // Tokens: a digit, a class [a-b], each optionally followed by {m} or {m,n}.
        let mut tokens: Vec<(u8, u8, usize, usize)> = Vec::new();
        let b = alt.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let (lo, hi) = if b[i] == b'[' {
                let r = (b[i + 1], b[i + 3]);
                i += 5;
                r
            } else {
                i += 1;
                (b[i - 1], b[i - 1])
            };
            let (mut min, mut max) = (1, 1);
            if i < b.len() && b[i] == b'{' {
                let end = alt[i..].find('}').expect("closed") + i;
                let spec = &alt[i + 1..end];
                let (a, c) = spec.split_once(',').unwrap_or((spec, spec));
                min = a.parse().expect("count");
                max = c.parse().expect("count");
                i = end + 1;
            }
            tokens.push((lo, hi, min, max));
        }
        fn go(tokens: &[(u8, u8, usize, usize)], text: &[u8]) -> bool {
            let Some(&(lo, hi, min, max)) = tokens.first() else { return text.is_empty() };
            (min..=max).any(|k| k <= text.len() && text[..k].iter().all(|c| (lo..=hi).contains(c)) && go(&tokens[1..], &text[k..]))
        }
        go(&tokens, text.as_bytes())
    }
}
