//! The envelope of a job on the jobs queue.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::job::{JobId, JobSpec, SpecError};
use crate::limits::Limits;

/// What the gateway (or the reconciler) publishes for a worker to run. The
/// worker treats the database row as the truth: the message only says which row
/// to run, and carries the spec so a malformed or over-limit job is recognised
/// (and dead-lettered) without a database round trip.
///
/// On the wire: `{"job_id", "owner_id", "kind", "params"}`, the params in
/// canonical form ([`JobSpec::canonical_params`]); [`JobMessage::decode`]
/// reads it back against the reader's limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobMessage {
    pub job_id: JobId,
    pub owner_id: Uuid,
    pub spec: JobSpec,
}

#[derive(Serialize, Deserialize)]
struct Wire<'a> {
    job_id: JobId,
    owner_id: Uuid,
    #[serde(borrow)]
    kind: std::borrow::Cow<'a, str>,
    params: serde_json::Value,
}

/// Why a delivery is not a job message that can run.
#[derive(Debug)]
pub enum DecodeError {
    /// Not a job message at all (its job id when one could be read).
    Malformed { job_id: Option<JobId>, reason: String },
    /// A job message whose kind or parameters are invalid here.
    Invalid { job_id: JobId, error: SpecError },
}

impl JobMessage {
    pub fn new(job_id: JobId, owner_id: Uuid, spec: JobSpec) -> Self {
        Self { job_id, owner_id, spec }
    }

    /// The message's JSON.
    pub fn to_json(&self) -> Vec<u8> {
        let wire = Wire { job_id: self.job_id, owner_id: self.owner_id, kind: self.spec.kind().as_str().into(), params: self.spec.canonical_params() };
        serde_json::to_vec(&wire).expect("a job message is plain JSON")
    }

    /// Reads a message and parses its spec against `limits`.
    pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Self, DecodeError> {
        let wire: Wire<'_> = serde_json::from_slice(bytes).map_err(|e| DecodeError::Malformed {
            job_id: serde_json::from_slice::<serde_json::Value>(bytes).ok().and_then(|v| v.get("job_id")?.as_str()?.parse().ok()),
            reason: format!("not a job message: {e}"),
        })?;
        let spec = JobSpec::parse(&wire.kind, &wire.params, limits).map_err(|error| DecodeError::Invalid { job_id: wire.job_id, error })?;
        Ok(Self { job_id: wire.job_id, owner_id: wire.owner_id, spec })
    }

    /// Whether the job goes to the quick queue ([`crate::Params::is_quick`]).
    pub fn is_quick(&self) -> bool {
        self.spec.is_quick()
    }
}

/// A change to a key's selected hotels, on the Kafka topic `selections`
/// (keyed by owner, so one owner's changes stay in order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelectionMessage {
    pub owner_id: Uuid,
    /// `add` or `remove`.
    pub op: SelectionOp,
    pub hotel_ids: Vec<i64>,
    pub at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SelectionOp {
    Add,
    Remove,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msg(kind: &str, params: serde_json::Value) -> Option<JobMessage> {
        let spec = JobSpec::parse(kind, &params, &Limits::default()).ok()?;
        Some(JobMessage::new(Uuid::nil(), Uuid::nil(), spec))
    }

    fn quick(kind: &str, params: serde_json::Value) -> bool {
        msg(kind, params).is_some_and(|m| m.is_quick())
    }

    #[test]
    fn quick_jobs_are_small_factorizations_and_narrow_prime_counts() {
        assert!(quick("factorize", json!({"n": "18446744073709551615"})));
        assert!(!quick("factorize", json!({"n": "18446744073709551616"})));
        assert!(!quick("factorize", json!({"n": "1".repeat(60)})));
        assert!(quick("primes", json!({"from": "5", "to": "1000005", "mode": "count"})));
        assert!(!quick("primes", json!({"from": "5", "to": "1000006", "mode": "count"})));
        assert!(!quick("primes", json!({"from": "5", "to": "10", "mode": "list"})));
        assert!(!quick("primes", json!({"from": "10", "to": "5", "mode": "count"})));
        assert!(!quick("check_url", json!({"url": "http://example.com/"})));
        assert!(!quick("factorize", json!({})));
    }

    #[test]
    fn messages_travel_as_json_in_canonical_form_and_decode_against_limits() {
        let m = msg("factorize", json!({"n": "0012"})).expect("a valid spec");
        let bytes = m.to_json();
        let v: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(v, json!({"job_id": Uuid::nil(), "owner_id": Uuid::nil(), "kind": "factorize", "params": {"n": "12"}}));
        assert_eq!(JobMessage::decode(&bytes, &Limits::default()).expect("decodes"), m);
        let strict = Limits { factorize_max_digits: 1, ..Limits::default() };
        assert!(matches!(JobMessage::decode(&bytes, &strict), Err(DecodeError::Invalid { job_id, .. }) if job_id == Uuid::nil()));
        assert!(matches!(JobMessage::decode(b"{\"job_id\": \"00000000-0000-0000-0000-000000000000\"}", &strict), Err(DecodeError::Malformed { job_id: Some(_), .. })));
        assert!(matches!(JobMessage::decode(b"\xff", &strict), Err(DecodeError::Malformed { job_id: None, .. })));
    }
}
