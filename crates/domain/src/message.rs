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
