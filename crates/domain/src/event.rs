//! Job events: published by the gateway (queued) and the worker (the rest) on
//! the events exchange, and delivered by every gateway replica to the WebSocket
//! clients of the job's owner.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::job::{JobId, JobKind, JobStatus};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    Queued,
    Started,
    Progress,
    Succeeded,
    Failed,
    Cancelled,
}

impl EventType {
    /// Terminal events end a job's life; each is emitted exactly once per job.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }

    /// The job's status when this event is sent.
    pub fn status(self) -> JobStatus {
        match self {
            Self::Queued => JobStatus::Queued,
            Self::Started | Self::Progress => JobStatus::Running,
            Self::Succeeded => JobStatus::Succeeded,
            Self::Failed => JobStatus::Failed,
            Self::Cancelled => JobStatus::Cancelled,
        }
    }

    pub fn for_status(status: JobStatus) -> Self {
        match status {
            JobStatus::Queued => Self::Queued,
            JobStatus::Running => Self::Started,
            JobStatus::Succeeded => Self::Succeeded,
            JobStatus::Failed => Self::Failed,
            JobStatus::Cancelled => Self::Cancelled,
        }
    }
}

/// One event of a job's life, as sent over `/api/v1/events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobEvent {
    /// `queued`, `started`, `progress`, `succeeded`, `failed` or `cancelled`.
    #[serde(rename = "type")]
    pub event: EventType,
    #[schema(value_type = String, format = Uuid)]
    pub job_id: JobId,
    pub kind: JobKind,
    /// The API key that owns the job; events are delivered to it only.
    pub owner_id: Uuid,
    pub status: JobStatus,
    /// 0..1
    pub progress: f64,
    /// The result (on `succeeded`), or `{code, message}` (on `failed`), or
    /// kind-specific progress facts (on `progress`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub data: Option<serde_json::Value>,
    /// Unique per terminal event (one number per job: a job ends once), so a consumer can drop a
    /// re-sent duplicate; absent on `queued`, `started` and `progress`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<i64>,
    pub at: DateTime<Utc>,
}

impl JobEvent {
    /// `event` of the job `job_id` (of `kind`, owned by `owner_id`) now, with
    /// the status the event implies; no data and no event id until given.
    pub fn new(event: EventType, job_id: JobId, kind: JobKind, owner_id: Uuid, progress: f64) -> Self {
        Self { event, job_id, kind, owner_id, status: event.status(), progress, data: None, event_id: None, at: Utc::now() }
    }

    pub fn with_data(mut self, data: Option<serde_json::Value>) -> Self {
        self.data = data;
        self
    }

    pub fn with_event_id(mut self, event_id: Option<i64>) -> Self {
        self.event_id = event_id;
        self
    }

    pub fn at(mut self, at: DateTime<Utc>) -> Self {
        self.at = at;
        self
    }
}
