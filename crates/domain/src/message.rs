//! The envelope of a job on the jobs queue.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::job::JobId;

/// What the gateway (or the reconciler) publishes for a worker to run. The
/// worker treats the database row as the truth: the message only says which row
/// to run, and carries the spec so a malformed or over-limit job is recognised
/// (and dead-lettered) without a database round trip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobMessage {
    pub job_id: JobId,
    pub owner_id: Uuid,
    pub kind: String,
    pub params: serde_json::Value,
}

/// Factorizations of numbers below this many bits are quick jobs.
pub const QUICK_FACTORIZE_MAX_BITS: u64 = 64;
/// Prime counts over ranges at most this wide are quick jobs.
pub const QUICK_PRIMES_COUNT_MAX_WIDTH: u64 = 1_000_000;

impl JobMessage {
    /// A job that takes at most about a millisecond of CPU: a factorization
    /// of a number below 2^64 or a prime count over a range of at most 10^6.
    /// Quick jobs have their own queue, taken by workers in batches (one
    /// database round trip and one ack for many jobs), so that a stream of
    /// small jobs is not paced by per-job overheads and never waits behind
    /// long ones. Judged from the message's canonical parameters; anything
    /// unexpected is not quick.
    pub fn is_quick(&self) -> bool {
        let num = |v: &serde_json::Value| match v {
            serde_json::Value::String(s) => s.parse::<u128>().ok(),
            v => v.as_u64().map(u128::from),
        };
        match self.kind.as_str() {
            "factorize" => self.params.get("n").and_then(num).is_some_and(|n| n < 1u128 << QUICK_FACTORIZE_MAX_BITS),
            "primes" => {
                let (from, to) = (self.params.get("from").and_then(num), self.params.get("to").and_then(num));
                let count = self.params.get("mode").and_then(|m| m.as_str()) == Some("count");
                matches!((from, to), (Some(f), Some(t)) if count && t >= f && t - f <= QUICK_PRIMES_COUNT_MAX_WIDTH as u128)
            }
            _ => false,
        }
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

    fn msg(kind: &str, params: serde_json::Value) -> JobMessage {
        JobMessage { job_id: Uuid::nil(), owner_id: Uuid::nil(), kind: kind.into(), params }
    }

    #[test]
    fn quick_jobs_are_small_factorizations_and_narrow_prime_counts() {
        assert!(msg("factorize", json!({"n": "18446744073709551615"})).is_quick());
        assert!(!msg("factorize", json!({"n": "18446744073709551616"})).is_quick());
        assert!(!msg("factorize", json!({"n": "1".repeat(60)})).is_quick());
        assert!(msg("primes", json!({"from": "5", "to": "1000005", "mode": "count"})).is_quick());
        assert!(!msg("primes", json!({"from": "5", "to": "1000006", "mode": "count"})).is_quick());
        assert!(!msg("primes", json!({"from": "5", "to": "10", "mode": "list"})).is_quick());
        assert!(!msg("primes", json!({"from": "10", "to": "5", "mode": "count"})).is_quick());
        assert!(!msg("check_url", json!({"url": "http://example.com/"})).is_quick());
        assert!(!msg("factorize", json!({})).is_quick());
    }
}
