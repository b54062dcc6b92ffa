//! Crunch's shared vocabulary: what a job is, which kinds exist, how their
//! parameters are parsed (once, at the edge), the events that describe a job's
//! life and the error body every service answers with.
//!
//! # Layout
//! - [`job`]: [`JobId`], [`JobKind`], [`JobStatus`], [`JobSpec`] and the parsed
//!   parameters of each kind, plus the canonical form used to recognise identical
//!   submissions.
//! - [`event`]: [`JobEvent`], the message that travels on the events exchange and
//!   over the WebSocket.
//! - [`message`]: [`JobMessage`], the envelope of a job on the jobs queue.
//! - [`error`]: [`ErrorBody`], the one JSON error shape of the API.
//! - [`limits`]: the configurable input limits every kind is checked against.
//! - [`genes`]: gene-file formats and the `genes` kind's parameters.
//!
//! This crate performs no I/O and depends on no web, database or broker crate.

pub mod error;
pub mod event;
pub mod genes;
pub mod job;
pub mod limits;
pub mod message;
pub mod results;

pub use error::{ErrorBody, ErrorDetail};
pub use event::{EventType, JobEvent};
pub use genes::{Compression, GeneFileSpec, GeneFormat, GenesParams, OnInvalid};
pub use job::{
    CheckMethod, CheckUrlParams, FactorizeParams, Job, JobError, JobId, JobKind, JobSpec, JobStatus, PrimesMode, PrimesParams, ScrapeHotelsParams, SpecError,
};
pub use limits::Limits;
pub use message::{DecodeError, JobMessage, SelectionMessage, SelectionOp};
pub use results::{FactorizePartial, FactorizeResult, PrimeFactor};

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
