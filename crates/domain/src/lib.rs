//! Crunch's shared vocabulary: what a job is, which kinds exist, how their
//! parameters are parsed (once, at the edge), the events that describe a job's
//! life and the error body every service answers with.
//!
//! # Layout
//! - [`kinds`]: [`JobKind`], [`JobSpec`] and one file per kind: its parsed
//!   parameters ([`Params`]: parse, canonical form, quick or not) and its
//!   typed result.
//! - [`job`]: [`JobId`], [`JobStatus`], [`SpecError`], [`JobError`] and [`Job`],
//!   the API's view of a job.
//! - [`event`]: [`JobEvent`], the message that travels on the events exchange and
//!   over the WebSocket.
//! - [`message`]: [`JobMessage`], the envelope of a job on the jobs queue.
//! - [`error`]: [`ErrorBody`], the one JSON error shape of the API.
//! - [`limits`]: the configurable input limits every kind is checked against.
//! - [`genes`]: gene files: formats, compression, the upload's rules.
//!
//! This crate performs no I/O and depends on no web, database or broker crate.

pub mod error;
pub mod event;
pub mod genes;
pub mod job;
pub mod kinds;
pub mod limits;
pub mod message;

pub use error::{ErrorBody, ErrorDetail};
pub use event::{EventType, JobEvent};
pub use genes::{Compression, GeneFileSpec, GeneFormat, OnInvalid};
pub use job::{Job, JobError, JobId, JobStatus, SpecError};
pub use kinds::check_url::{CheckAnswer, CheckFailure, CheckMethod, CheckNoAnswer, CheckTimings, CheckTotal, CheckUrlParams, CheckUrlResult, Redirect, RetryOn};
pub use kinds::factorize::{FactorizeParams, FactorizePartial, FactorizeResult, PrimeFactor};
pub use kinds::genes::{GeneProblem, GenesParams, GenesResult};
pub use kinds::nth_prime::{NthPrimeParams, NthPrimeResult, NTH_PRIME_MAX};
pub use kinds::primes::{PrimesMode, PrimesParams, PrimesResult};
pub use kinds::scrape_hotels::{CityFoundBy, PageFailure, RobotsReport, RobotsStatus, ScrapeHotelsParams, ScrapeHotelsResult, ScrapedCity};
pub use kinds::{JobKind, JobSpec, Params};
pub use limits::Limits;
pub use message::{DecodeError, JobMessage, SelectionMessage, SelectionOp};

/// A setting that must never be printed (a password, a key, a URL with a
/// password): `Debug` shows `Secret(***)`, and the value is reached only
/// through [`Secret::expose`], at the one place that uses it.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self(s)
    }
}

#[cfg(test)]
mod secret_tests {
    #[test]
    fn a_secret_never_prints() {
        let s = super::Secret::new("hunter2");
        assert_eq!(format!("{s:?} {:?}", Some(&s)), "Secret(***) Some(Secret(***))");
        assert_eq!(s.expose(), "hunter2");
    }
}
