use chrono::{DateTime, Utc};
use crunch_domain::{Job, JobError, JobKind, JobMessage, JobSpec, JobStatus, Limits, SpecError};
use diesel::prelude::*;
use uuid::Uuid;

use crate::schema::{api_keys, job_events, jobs, prime_chunks};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_keys, check_for_backend(diesel::pg::Pg))]
pub struct ApiKeyRow {
    pub id: Uuid,
    pub name: String,
    pub key_hash: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = api_keys)]
pub struct NewApiKey<'a> {
    pub id: Uuid,
    pub name: &'a str,
    pub key_hash: &'a [u8],
}

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = jobs, check_for_backend(diesel::pg::Pg))]
pub struct JobRow {
    pub id: Uuid,
    pub seq: i64,
    pub owner_id: Uuid,
    pub kind: JobKind,
    pub params: serde_json::Value,
    pub dedup_key: Vec<u8>,
    pub status: JobStatus,
    pub progress: f64,
    pub result: Option<serde_json::Value>,
    pub error: Option<serde_json::Value>,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub published_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub parent_id: Option<Uuid>,
    pub shard_index: Option<i32>,
    /// The monitor this job is a check of.
    pub monitor_id: Option<Uuid>,
    /// What the job is doing now, in words (while it runs).
    pub stage: Option<String>,
}

impl JobRow {
    /// The message that has a worker run this job, its stored spec parsed
    /// against `limits`.
    pub fn message(&self, limits: &Limits) -> Result<JobMessage, SpecError> {
        Ok(JobMessage::new(self.id, self.owner_id, JobSpec::parse(self.kind.as_str(), &self.params, limits)?))
    }

    /// The API's view of the row.
    pub fn to_job(&self) -> Job {
        Job {
            id: self.id,
            kind: self.kind,
            params: self.params.clone(),
            status: self.status,
            progress: self.progress,
            result: self.result.clone(),
            error: self.error.clone().map(JobError::from_stored),
            attempts: self.attempts,
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            monitor_id: self.monitor_id,
            stage: if self.status == JobStatus::Running { self.stage.clone() } else { None },
        }
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = jobs)]
pub struct NewJob<'a> {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub kind: JobKind,
    pub params: &'a serde_json::Value,
    pub dedup_key: &'a [u8],
}

/// A shard of a parent job (inserted by the worker that splits the parent).
#[derive(Debug, Insertable)]
#[diesel(table_name = jobs)]
pub struct NewShard {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub kind: JobKind,
    pub params: serde_json::Value,
    pub dedup_key: Vec<u8>,
    pub parent_id: Uuid,
    pub shard_index: i32,
}

/// Up to 65,536 consecutive primes of one job, gap-encoded.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = prime_chunks, check_for_backend(diesel::pg::Pg))]
pub struct PrimeChunk {
    pub job_id: Uuid,
    pub start_index: i64,
    /// The first prime's u64 bit pattern.
    pub first_prime: i64,
    pub count: i32,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = job_events, check_for_backend(diesel::pg::Pg))]
pub struct EventRow {
    pub id: i64,
    pub job_id: Uuid,
    pub event: serde_json::Value,
    pub published: bool,
    pub created_at: DateTime<Utc>,
}
