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
