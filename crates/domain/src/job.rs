//! Jobs: statuses, spec errors, job errors and the API's view of a job (the
//! kinds and their parameters are in [`crate::kinds`]).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

pub use crate::kinds::{JobKind, JobSpec};

/// A job's id: a random (v4) UUID.
pub type JobId = Uuid;

/// The life of a job: `queued -> running -> succeeded | failed`, or
/// `cancelled` from `queued` or `running`. A message redelivered while the row
/// is `running` (the worker that had it died) runs it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "diesel", derive(diesel::AsExpression, diesel::FromSqlRow), diesel(sql_type = diesel::sql_types::Text))]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub const ALL: &'static [JobStatus] = &[
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Succeeded,
        JobStatus::Failed,
        JobStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, JobStatus::Succeeded | JobStatus::Failed | JobStatus::Cancelled)
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.iter().copied().find(|k| k.as_str() == s).ok_or_else(|| {
            let valid: Vec<_> = Self::ALL.iter().map(|s| s.as_str()).collect();
            format!("unknown status '{}': valid statuses are {}", s.chars().take(64).collect::<String>(), valid.join(", "))
        })
    }
}

/// Why a submission's kind or parameters were refused. Each variant names the
/// rule it broke; the gateway turns it into a 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("unknown job kind '{0}'")]
    UnknownKind(String),
    #[error("{field}: {message}")]
    InvalidParam { field: &'static str, message: String },
    /// A top-level field of a request body other than a job's (e.g. a gene
    /// file's `format`); `message` names the field.
    #[error("{message}")]
    Field { field: &'static str, message: String },
}

impl SpecError {
    pub(crate) fn param(field: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidParam { field, message: message.into() }
    }

    /// The machine-readable code of the error body.
    pub fn code(&self) -> &'static str {
        match self {
            SpecError::UnknownKind(_) => "unknown_kind",
            SpecError::InvalidParam { .. } => "invalid_params",
            SpecError::Field { .. } => "invalid_field",
        }
    }

    /// The offending field, e.g. `params.n`.
    pub fn field(&self) -> String {
        match self {
            SpecError::UnknownKind(_) => "kind".to_owned(),
            SpecError::InvalidParam { field, .. } => format!("params.{field}"),
            SpecError::Field { field, .. } => (*field).to_owned(),
        }
    }

    pub fn message(&self) -> String {
        match self {
            SpecError::UnknownKind(k) => {
                format!("unknown job kind '{k}': valid kinds are {}", JobKind::names().join(", "))
            }
            SpecError::InvalidParam { field, message } => format!("params.{field} {message}"),
            SpecError::Field { message, .. } => message.clone(),
        }
    }
}

/// The error of a failed job: `{code, message}` plus optional details (e.g.
/// the partial factorization found before a time budget ran out).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobError {
    #[schema(example = "time_budget_exceeded")]
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

impl JobError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { code: code.into(), message: message.into(), details: None }
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    /// The error as stored in the job's row.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a JobError is plain JSON")
    }

    /// The error stored in a job's row; one that is not a `JobError` (only a
    /// hand edit of the database writes one) is shown as it is, under
    /// `details`, rather than dropped.
    pub fn from_stored(v: serde_json::Value) -> Self {
        serde_json::from_value(v.clone()).unwrap_or_else(|_| Self::new("unreadable_error", "the job's stored error is not in the expected form").with_details(v))
    }
}

/// A job as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Job {
    #[schema(value_type = String, format = Uuid)]
    pub id: JobId,
    pub kind: JobKind,
    #[schema(value_type = Object, example = json!({"n": "1000"}))]
    pub params: serde_json::Value,
    pub status: JobStatus,
    /// 0..1
    pub progress: f64,
    /// Null until the job has succeeded; its shape is the kind's (a
    /// `factorize` job's is a `FactorizeResult`).
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
    /// Null unless the job failed.
    pub error: Option<JobError>,
    /// How many times a worker has started the job.
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The monitor this job is a check of (`/api/v1/monitors`); absent for
    /// jobs submitted through `/api/v1/jobs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub monitor_id: Option<Uuid>,
    /// What a running job is doing now, in words a person can follow (a
    /// factorization's "ECM p25: 120 of 272 curves (B1 = 50000) on a
    /// 200-digit cofactor"); absent when the kernel says nothing or the job
    /// is not running. The same text comes as `data.stage` on `progress`
    /// events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
}

/// `JobKind`, `JobStatus`, `GeneFormat`, `Compression` and `OnInvalid` in PostgreSQL text
/// columns: a value that is not one of them is an error when read, never a
/// default.
#[cfg(feature = "diesel")]
mod sql {
    use diesel::deserialize::{self, FromSql};
    use diesel::pg::{Pg, PgValue};
    use diesel::serialize::{self, Output, ToSql};
    use diesel::sql_types::Text;

    use super::{JobKind, JobStatus};

    macro_rules! text_enum {
        ($t:ty, $what:literal) => {
            impl FromSql<Text, Pg> for $t {
                fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
                    let s = <String as FromSql<Text, Pg>>::from_sql(bytes)?;
                    s.parse().map_err(|_| format!(concat!("unknown ", $what, " {:?} in the database"), s).into())
                }
            }

            impl ToSql<Text, Pg> for $t {
                fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
                    <str as ToSql<Text, Pg>>::to_sql(self.as_str(), &mut out.reborrow())
                }
            }
        };
    }

    text_enum!(JobKind, "job kind");
    text_enum!(JobStatus, "job status");
    text_enum!(crate::genes::GeneFormat, "gene format");
    text_enum!(crate::genes::Compression, "compression");
    text_enum!(crate::genes::OnInvalid, "on_invalid policy");
}
