//! Jobs: kinds, statuses, parsed specs and the API's view of a job.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use num_bigint::BigUint;
use num_traits::Zero;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::limits::Limits;

/// A job's id: a random (v4) UUID.
pub type JobId = Uuid;

/// The kinds of job Crunch runs. A new kind is added here, in [`JobSpec`], in
/// the worker's dispatch (`process.rs`, `kinds/`) and on the dashboard's form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "diesel", derive(diesel::AsExpression, diesel::FromSqlRow), diesel(sql_type = diesel::sql_types::Text))]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Integer factorization: `{"n": "<decimal>"}`.
    Factorize,
    /// Primes in a range: `{"from": .., "to": .., "mode": "list" | "count"}`.
    Primes,
    /// Check a URL: `{"url": .., "method"?, "retries"?, "timeout_ms"?}`.
    CheckUrl,
    /// Scrape hotel listings: `{"city" | "start_url", "pages"?, "details"?}`.
    ScrapeHotels,
    /// Parse an uploaded gene file: `{"file_id": ..}` (started through
    /// `/api/v1/gene-files`).
    Genes,
}

impl JobKind {
    pub const ALL: &'static [JobKind] = &[JobKind::Factorize, JobKind::Primes, JobKind::CheckUrl, JobKind::ScrapeHotels, JobKind::Genes];

    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Factorize => "factorize",
            JobKind::Primes => "primes",
            JobKind::CheckUrl => "check_url",
            JobKind::ScrapeHotels => "scrape_hotels",
            JobKind::Genes => "genes",
        }
    }

    /// I/O-bound kinds run from their own queue with their own concurrency
    /// limit, so a slow site never delays CPU jobs.
    pub fn is_io(self) -> bool {
        matches!(self, JobKind::CheckUrl | JobKind::ScrapeHotels)
    }

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

/// Parameters of a `factorize` job. `n` is at least 1 and has at most
/// `Limits::factorize_max_digits` digits: an instance cannot hold anything else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactorizeParams {
    pub n: BigUint,
}

impl FactorizeParams {
    pub fn parse(params: &serde_json::Value, limits: &Limits) -> Result<Self, SpecError> {
        let obj = params
            .as_object()
            .ok_or_else(|| SpecError::param("n", "is required: params must be an object like {\"n\": \"360\"}"))?;
        if let Some(extra) = obj.keys().find(|k| k.as_str() != "n") {
            return Err(SpecError::InvalidParam {
                field: "n",
                message: format!("is the only parameter of factorize; unexpected field '{}'", extra.chars().take(64).collect::<String>()),
            });
        }
        let text = match obj.get("n") {
            None | Some(serde_json::Value::Null) => {
                return Err(SpecError::param("n", "is required (a positive decimal integer as a string)"))
            }
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Number(num)) if num.is_u64() => num.to_string(),
            Some(_) => {
                return Err(SpecError::param("n", "must be a positive decimal integer written as a string, e.g. \"360\""))
            }
        };
        let max = limits.factorize_max_digits;
        if text.len() > max + 64 || text.trim_start_matches('0').len() > max {
            return Err(SpecError::param("n", format!("has more than {max} digits (the limit is {max} digits)")));
        }
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SpecError::param("n", "must be a positive decimal integer (digits 0-9 only, no sign, spaces or exponent)"));
        }
        let n = BigUint::parse_bytes(text.as_bytes(), 10)
            .ok_or_else(|| SpecError::param("n", "must be a positive decimal integer"))?;
        if n.is_zero() {
            return Err(SpecError::param("n", "must be at least 1 (0 has no factorization)"));
        }
        Ok(Self { n })
    }

    pub fn canonical(&self) -> serde_json::Value {
        serde_json::json!({ "n": self.n.to_str_radix(10) })
    }
}

/// `list` (every prime, stored compactly, served paginated or streamed) or
/// `count` (how many).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrimesMode {
    List,
    Count,
}

/// Parameters of a `primes` job: `0 <= from <= to <= 2^64 - 1`, both ends
/// inclusive, `to - from` within the mode's limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrimesParams {
    pub from: u64,
    pub to: u64,
    pub mode: PrimesMode,
}

impl PrimesParams {
    fn bound(obj: &serde_json::Map<String, serde_json::Value>, field: &'static str) -> Result<u64, SpecError> {
        let rule = "must be an integer from 0 to 18446744073709551615 (2^64 - 1), as a JSON number or a decimal string";
        match obj.get(field) {
            None | Some(serde_json::Value::Null) => Err(SpecError::param(field, format!("is required: it {rule}"))),
            Some(serde_json::Value::Number(n)) => match n.as_u64() {
                Some(v) => Ok(v),
                None if n.as_i64().is_some_and(|v| v < 0) => Err(SpecError::param(field, format!("is negative: it {rule}"))),
                None if n.is_f64() && n.as_f64().is_some_and(|v| v.fract() != 0.0 || v < 0.0) => {
                    Err(SpecError::param(field, format!("is not an integer: it {rule}")))
                }
                None => Err(SpecError::param(field, format!("is above 2^64 - 1: it {rule}"))),
            },
            Some(serde_json::Value::String(s)) => {
                if s.is_empty() || s.len() > 64 || !s.bytes().all(|b| b.is_ascii_digit()) {
                    let why = if s.starts_with('-') { "is negative" } else { "is not a decimal integer" };
                    return Err(SpecError::param(field, format!("{why}: it {rule}")));
                }
                s.trim_start_matches('0')
                    .parse::<u64>()
                    .or_else(|e| if s.trim_start_matches('0').is_empty() { Ok(0) } else { Err(e) })
                    .map_err(|_| SpecError::param(field, format!("is above 2^64 - 1: it {rule}")))
            }
            Some(_) => Err(SpecError::param(field, format!("has the wrong type: it {rule}"))),
        }
    }

    pub fn parse(params: &serde_json::Value, limits: &Limits) -> Result<Self, SpecError> {
        let obj = params.as_object().ok_or_else(|| {
            SpecError::param("from", "is required: params must be an object like {\"from\": 0, \"to\": 100, \"mode\": \"count\"}")
        })?;
        if let Some(extra) = obj.keys().find(|k| !matches!(k.as_str(), "from" | "to" | "mode")) {
            return Err(SpecError::InvalidParam {
                field: "mode",
                message: format!("is one of from, to, mode; unexpected field '{}'", extra.chars().take(64).collect::<String>()),
            });
        }
        let from = Self::bound(obj, "from")?;
        let to = Self::bound(obj, "to")?;
        let mode = match obj.get("mode").and_then(|m| m.as_str()) {
            Some("list") => PrimesMode::List,
            Some("count") => PrimesMode::Count,
            _ => return Err(SpecError::param("mode", "must be \"list\" or \"count\"")),
        };
        if from > to {
            return Err(SpecError::param("from", format!("must not exceed to (from = {from}, to = {to})")));
        }
        let (max, name) = match mode {
            PrimesMode::List => (limits.primes_list_max_width, "list"),
            PrimesMode::Count => (limits.primes_count_max_width, "count"),
        };
        if to - from > max {
            return Err(SpecError::param(
                "to",
                format!("makes the range too wide for {name} mode: to - from = {} exceeds the limit of {max}", to - from),
            ));
        }
        Ok(Self { from, to, mode })
    }

    pub fn canonical(&self) -> serde_json::Value {
        serde_json::json!({
            "from": self.from.to_string(),
            "to": self.to.to_string(),
            "mode": self.mode,
        })
    }
}

/// HTTP method of a URL check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CheckMethod {
    #[serde(rename = "GET")]
    Get,
    #[serde(rename = "HEAD")]
    Head,
}

/// Parameters of a `check_url` job: an absolute http(s) URL (a URL without a
/// scheme gets `http://`), the method, retries and a per-attempt timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckUrlParams {
    pub url: url::Url,
    pub method: CheckMethod,
    pub retries: u32,
    pub timeout_ms: u64,
}

impl CheckUrlParams {
    pub const MAX_URL_LEN: usize = 2048;
    pub const MAX_RETRIES: u32 = 5;
    pub const TIMEOUT_MS: std::ops::RangeInclusive<u64> = 100..=60_000;

    pub fn parse(params: &serde_json::Value) -> Result<Self, SpecError> {
        let obj = params
            .as_object()
            .ok_or_else(|| SpecError::param("url", "is required: params must be an object like {\"url\": \"https://example.com\"}"))?;
        if let Some(extra) = obj.keys().find(|k| !matches!(k.as_str(), "url" | "method" | "retries" | "timeout_ms")) {
            return Err(SpecError::InvalidParam {
                field: "url",
                message: format!("is one of url, method, retries, timeout_ms; unexpected field '{}'", extra.chars().take(64).collect::<String>()),
            });
        }
        let raw = obj
            .get("url")
            .and_then(|u| u.as_str())
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .ok_or_else(|| SpecError::param("url", "is required: an http or https URL as a string"))?;
        if raw.len() > Self::MAX_URL_LEN {
            return Err(SpecError::param("url", format!("is longer than {} characters", Self::MAX_URL_LEN)));
        }
        // "x.com/p" and "localhost:8080" have no scheme; "javascript:..." and "mailto:..." do.
        let has_scheme = raw.contains("://")
            || raw.split_once(':').is_some_and(|(scheme, rest)| {
                scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-".contains(c))
                    && scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                    && !rest.split(['/', '?', '#']).next().is_some_and(|port| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
            });
        let with_scheme = if has_scheme { raw.to_owned() } else { format!("http://{raw}") };
        let url = url::Url::parse(&with_scheme).map_err(|e| SpecError::param("url", format!("is not a valid URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(SpecError::param("url", format!("has the scheme '{}': only http and https are allowed", url.scheme())));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(SpecError::param("url", "has no host"));
        }
        let method = match obj.get("method") {
            None | Some(serde_json::Value::Null) => CheckMethod::Get,
            Some(serde_json::Value::String(m)) if m.eq_ignore_ascii_case("GET") => CheckMethod::Get,
            Some(serde_json::Value::String(m)) if m.eq_ignore_ascii_case("HEAD") => CheckMethod::Head,
            Some(_) => return Err(SpecError::param("method", "must be \"GET\" or \"HEAD\"")),
        };
        let retries = match obj.get("retries") {
            None | Some(serde_json::Value::Null) => 2,
            Some(v) => v
                .as_u64()
                .filter(|r| *r <= Self::MAX_RETRIES as u64)
                .ok_or_else(|| SpecError::param("retries", format!("must be an integer from 0 to {}", Self::MAX_RETRIES)))? as u32,
        };
        let timeout_ms = match obj.get("timeout_ms") {
            None | Some(serde_json::Value::Null) => 10_000,
            Some(v) => v.as_u64().filter(|t| Self::TIMEOUT_MS.contains(t)).ok_or_else(|| {
                SpecError::param("timeout_ms", format!("must be an integer from {} to {}", Self::TIMEOUT_MS.start(), Self::TIMEOUT_MS.end()))
            })?,
        };
        Ok(Self { url, method, retries, timeout_ms })
    }

    pub fn canonical(&self) -> serde_json::Value {
        serde_json::json!({"url": self.url.as_str(), "method": self.method, "retries": self.retries, "timeout_ms": self.timeout_ms})
    }
}

/// Parameters of a `scrape_hotels` job: a city of the site profile's
/// catalogue or a list page URL, how many list pages (30 hotels each), and
/// whether to fetch every hotel's detail page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrapeHotelsParams {
    pub city: Option<String>,
    pub start_url: Option<url::Url>,
    pub pages: u32,
    pub details: bool,
}

impl ScrapeHotelsParams {
    pub fn parse(params: &serde_json::Value, limits: &Limits) -> Result<Self, SpecError> {
        let obj = params
            .as_object()
            .ok_or_else(|| SpecError::param("city", "or start_url is required: params must be an object like {\"city\": \"Dubai\"}"))?;
        if let Some(extra) = obj.keys().find(|k| !matches!(k.as_str(), "city" | "start_url" | "pages" | "details")) {
            return Err(SpecError::InvalidParam {
                field: "city",
                message: format!("is one of city, start_url, pages, details; unexpected field '{}'", extra.chars().take(64).collect::<String>()),
            });
        }
        let city = obj.get("city").and_then(|c| c.as_str()).map(str::trim).filter(|c| !c.is_empty());
        if city.is_some_and(|c| c.len() > 100) {
            return Err(SpecError::param("city", "is longer than 100 characters"));
        }
        let start_url = match obj.get("start_url").and_then(|u| u.as_str()) {
            Some(u) => Some(CheckUrlParams::parse(&serde_json::json!({"url": u})).map_err(|e| match e {
                SpecError::InvalidParam { message, .. } => SpecError::InvalidParam { field: "start_url", message },
                other => other,
            })?.url),
            None => None,
        };
        if city.is_some() == start_url.is_some() {
            return Err(SpecError::param("city", "or start_url is required, not both"));
        }
        let max = limits.scrape_max_pages;
        let pages = match obj.get("pages") {
            None | Some(serde_json::Value::Null) => 1,
            Some(v) => v
                .as_u64()
                .filter(|p| (1..=max as u64).contains(p))
                .ok_or_else(|| SpecError::param("pages", format!("must be an integer from 1 to {max}")))? as u32,
        };
        let details = match obj.get("details") {
            None | Some(serde_json::Value::Null) => true,
            Some(serde_json::Value::Bool(b)) => *b,
            Some(_) => return Err(SpecError::param("details", "must be true or false")),
        };
        Ok(Self { city: city.map(str::to_owned), start_url, pages, details })
    }

    pub fn canonical(&self) -> serde_json::Value {
        serde_json::json!({
            "city": self.city,
            "start_url": self.start_url.as_ref().map(|u| u.as_str()),
            "pages": self.pages,
            "details": self.details,
        })
    }
}

/// A job's kind with its parsed parameters: built only by [`JobSpec::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobSpec {
    Factorize(FactorizeParams),
    Primes(PrimesParams),
    CheckUrl(CheckUrlParams),
    ScrapeHotels(ScrapeHotelsParams),
    Genes(crate::genes::GenesParams),
}

impl JobSpec {
    /// Parses a kind name and its JSON parameters against the limits.
    pub fn parse(kind: &str, params: &serde_json::Value, limits: &Limits) -> Result<Self, SpecError> {
        let kind = kind.parse::<JobKind>()?;
        if has_nul(params) {
            return Err(SpecError::param("params", "must not contain NUL characters (\\u0000) in any name or value"));
        }
        match kind {
            JobKind::Factorize => FactorizeParams::parse(params, limits).map(JobSpec::Factorize),
            JobKind::Primes => PrimesParams::parse(params, limits).map(JobSpec::Primes),
            JobKind::CheckUrl => CheckUrlParams::parse(params).map(JobSpec::CheckUrl),
            JobKind::ScrapeHotels => ScrapeHotelsParams::parse(params, limits).map(JobSpec::ScrapeHotels),
            JobKind::Genes => crate::genes::GenesParams::parse(params).map(JobSpec::Genes),
        }
    }

    pub fn kind(&self) -> JobKind {
        match self {
            JobSpec::Factorize(_) => JobKind::Factorize,
            JobSpec::Primes(_) => JobKind::Primes,
            JobSpec::CheckUrl(_) => JobKind::CheckUrl,
            JobSpec::ScrapeHotels(_) => JobKind::ScrapeHotels,
            JobSpec::Genes(_) => JobKind::Genes,
        }
    }

    /// The parameters in canonical form: what is stored and what identical
    /// submissions are recognised by.
    pub fn canonical_params(&self) -> serde_json::Value {
        match self {
            JobSpec::Factorize(p) => p.canonical(),
            JobSpec::Primes(p) => p.canonical(),
            JobSpec::CheckUrl(p) => p.canonical(),
            JobSpec::ScrapeHotels(p) => p.canonical(),
            JobSpec::Genes(p) => p.canonical(),
        }
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(params: serde_json::Value) -> Result<JobSpec, SpecError> {
        JobSpec::parse("factorize", &params, &Limits::default())
    }

    #[test]
    fn factorize_accepts_decimal_strings_and_canonicalises_leading_zeros() {
        let spec = parse(json!({"n": "000360"})).expect("valid");
        assert_eq!(spec.canonical_params(), json!({"n": "360"}));
    }

    #[test]
    fn factorize_accepts_small_json_integers() {
        assert_eq!(parse(json!({"n": 97})).expect("valid").canonical_params(), json!({"n": "97"}));
    }

    #[test]
    fn factorize_refuses_zero_negative_fractions_and_junk() {
        for bad in [json!({"n": "0"}), json!({"n": "-5"}), json!({"n": "1.5"}), json!({"n": "12a"}),
                    json!({"n": ""}), json!({"n": " 12"}), json!({"n": 1.5}), json!({"n": -3}),
                    json!({}), json!([1]), json!({"n": "1e9"}), json!({"n": "5", "m": 1})] {
            let err = parse(bad.clone()).expect_err(&bad.to_string());
            assert_eq!(err.code(), "invalid_params", "{bad}");
            assert_eq!(err.field(), "params.n");
        }
    }

    #[test]
    fn factorize_limit_names_the_limit() {
        let limits = Limits { factorize_max_digits: 10, ..Limits::default() };
        let err = JobSpec::parse("factorize", &json!({"n": "12345678901"}), &limits).expect_err("too long");
        assert!(err.message().contains("10 digits"), "{}", err.message());
        // Leading zeros do not count against the limit.
        JobSpec::parse("factorize", &json!({"n": "0001234567890"}), &limits).expect("ten digits");
    }

    #[test]
    fn unknown_kind_lists_the_valid_ones() {
        let err = JobSpec::parse("mine_bitcoin", &json!({}), &Limits::default()).expect_err("unknown");
        assert_eq!(err.code(), "unknown_kind");
        assert!(err.message().contains("factorize") && err.message().contains("primes"));
    }

    fn primes(params: serde_json::Value) -> Result<PrimesParams, SpecError> {
        match JobSpec::parse("primes", &params, &Limits::default())? {
            JobSpec::Primes(p) => Ok(p),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn primes_accepts_numbers_and_strings_up_to_2_64_minus_1() {
        let p = primes(json!({"from": 0, "to": "100", "mode": "count"})).expect("valid");
        assert_eq!((p.from, p.to, p.mode), (0, 100, PrimesMode::Count));
        let top = primes(json!({"from": "18446744073709551515", "to": "18446744073709551615", "mode": "list"})).expect("valid");
        assert_eq!(top.to, u64::MAX);
        assert_eq!(primes(json!({"from": "000", "to": "7", "mode": "list"})).expect("valid").canonical(),
                   json!({"from": "0", "to": "7", "mode": "list"}));
    }

    #[test]
    fn primes_refuses_each_broken_rule_with_its_name() {
        let cases = [
            (json!({"from": 10, "to": 5, "mode": "count"}), "must not exceed"),
            (json!({"from": -1, "to": 5, "mode": "count"}), "negative"),
            (json!({"from": "-1", "to": 5, "mode": "count"}), "negative"),
            (json!({"from": 1.5, "to": 5, "mode": "count"}), "not an integer"),
            (json!({"from": "abc", "to": 5, "mode": "count"}), "not a decimal"),
            (json!({"from": 0, "to": "18446744073709551616", "mode": "count"}), "above 2^64 - 1"),
            (json!({"from": 0, "to": 18446744073709551616.0, "mode": "count"}), "above 2^64 - 1"),
            (json!({"from": 0, "to": "2000000000", "mode": "list"}), "exceeds the limit of 1000000000"),
            (json!({"from": 0, "to": 5, "mode": "sum"}), "list\" or \"count"),
            (json!({"from": 0, "to": 5}), "list\" or \"count"),
            (json!({"to": 5, "mode": "count"}), "required"),
        ];
        for (params, needle) in cases {
            let err = primes(params.clone()).expect_err(&params.to_string());
            assert_eq!(err.code(), "invalid_params");
            assert!(err.message().contains(needle), "{params}: {}", err.message());
        }
    }

    #[test]
    fn check_url_adds_http_and_refuses_other_schemes() {
        let p = |v: serde_json::Value| match JobSpec::parse("check_url", &v, &Limits::default()) {
            Ok(JobSpec::CheckUrl(p)) => Ok(p),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e),
        };
        let ok = p(json!({"url": "example.com/x"})).expect("valid");
        assert_eq!(ok.url.as_str(), "http://example.com/x");
        assert_eq!((ok.method, ok.retries, ok.timeout_ms), (CheckMethod::Get, 2, 10_000));
        assert_eq!(p(json!({"url": "https://a.b", "method": "head"})).expect("valid").method, CheckMethod::Head);
        assert_eq!(p(json!({"url": "localhost:8080/x"})).expect("valid").url.as_str(), "http://localhost:8080/x");
        assert!(p(json!({"url": "mailto:a@b.c"})).is_err());
        for (bad, needle) in [(json!({"url": "ftp://x.y"}), "only http and https"), (json!({"url": "file:///etc/passwd"}), "only http and https"),
                              (json!({"url": "javascript:alert(1)"}), "only http and https"), (json!({}), "required"),
                              (json!({"url": "http://"}), "not a valid URL"), (json!({"url": "x.y", "retries": 9}), "0 to 5"),
                              (json!({"url": "x.y", "timeout_ms": 5}), "100 to 60000"), (json!({"url": "x.y", "method": "POST"}), "GET")] {
            let err = p(bad.clone()).expect_err(&bad.to_string());
            assert!(err.message().contains(needle), "{bad}: {}", err.message());
        }
    }

    #[test]
    fn dedup_key_depends_on_owner_and_canonical_params() {
        let a = parse(json!({"n": "360"})).expect("valid");
        let b = parse(json!({"n": "0360"})).expect("valid");
        let (o1, o2) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(a.dedup_key(o1), b.dedup_key(o1));
        assert_ne!(a.dedup_key(o1), a.dedup_key(o2));
    }
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
