//! `check_url`: fetch a URL and report what happened.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Params;
use crate::job::SpecError;
use crate::limits::Limits;

/// HTTP method of a URL check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum CheckMethod {
    #[serde(rename = "GET")]
    Get,
    #[serde(rename = "HEAD")]
    Head,
}

/// Parameters of a `check_url` job: an absolute http(s) URL (a URL without a
/// scheme gets `http://`), the method, retries, what is retried and a
/// per-attempt timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckUrlParams {
    url: url::Url,
    method: CheckMethod,
    retries: u32,
    retry_on: RetryOn,
    timeout_ms: u64,
}

/// What a URL check retries (with backoff, up to its `retries`): network
/// errors and timeouts (`"network"`, the default), answers 500-599 (`"5xx"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryOn {
    pub network: bool,
    pub server_error: bool,
}

impl Default for RetryOn {
    fn default() -> Self {
        Self { network: true, server_error: false }
    }
}

impl RetryOn {
    /// The longest list taken (duplicates count).
    pub const MAX_ITEMS: usize = 8;

    /// `["network", "5xx"]` in any order, duplicates allowed; the error names `field`.
    pub fn parse(v: Option<&serde_json::Value>, field: &'static str) -> Result<Self, SpecError> {
        let bad = || SpecError::param(field, format!("must be a list of \"network\" and \"5xx\" (at most {} items)", Self::MAX_ITEMS));
        match v {
            None | Some(serde_json::Value::Null) => Ok(Self::default()),
            Some(serde_json::Value::Array(items)) if items.len() <= Self::MAX_ITEMS => {
                let mut r = Self { network: false, server_error: false };
                for item in items {
                    match item.as_str() {
                        Some("network") => r.network = true,
                        Some("5xx") => r.server_error = true,
                        _ => return Err(bad()),
                    }
                }
                Ok(r)
            }
            Some(_) => Err(bad()),
        }
    }

    /// The canonical list.
    pub fn names(self) -> Vec<&'static str> {
        [(self.network, "network"), (self.server_error, "5xx")].into_iter().filter(|(on, _)| *on).map(|(_, n)| n).collect()
    }

    pub fn schema() -> serde_json::Value {
        serde_json::json!({"type": ["array", "null"], "items": {"type": "string", "enum": ["network", "5xx"]}, "maxItems": Self::MAX_ITEMS,
                           "description": "What is retried, with backoff, up to `retries` times: network errors and timeouts (\"network\", the default), answers 500-599 (\"5xx\")"})
    }
}

impl CheckUrlParams {
    pub const MAX_URL_LEN: usize = 2048;
    pub const MAX_RETRIES: u32 = 5;
    pub const TIMEOUT_MS: std::ops::RangeInclusive<u64> = 100..=60_000;

    pub fn url(&self) -> &url::Url {
        &self.url
    }

    pub fn method(&self) -> CheckMethod {
        self.method
    }

    /// Retries after what [`Self::retry_on`] names.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    pub fn retry_on(&self) -> RetryOn {
        self.retry_on
    }

    /// The timeout of one attempt.
    pub fn timeout_ms(&self) -> u64 {
        self.timeout_ms
    }

    /// An http(s) URL as users type it: a URL without a scheme gets
    /// `http://`; the error names `field`.
    pub fn parse_url(raw: &str, field: &'static str) -> Result<url::Url, SpecError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(SpecError::param(field, "is required: an http or https URL as a string"));
        }
        if raw.len() > Self::MAX_URL_LEN {
            return Err(SpecError::param(field, format!("is longer than {} characters", Self::MAX_URL_LEN)));
        }
        // "x.com/p" and "localhost:8080" have no scheme; "javascript:..." and "mailto:..." do.
        let has_scheme = raw.contains("://")
            || raw.split_once(':').is_some_and(|(scheme, rest)| {
                scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-".contains(c))
                    && scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                    && !rest.split(['/', '?', '#']).next().is_some_and(|port| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
            });
        let with_scheme = if has_scheme { raw.to_owned() } else { format!("http://{raw}") };
        let url = url::Url::parse(&with_scheme).map_err(|e| SpecError::param(field, format!("is not a valid URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(SpecError::param(field, format!("has the scheme '{}': only http and https are allowed", url.scheme())));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(SpecError::param(field, "has no host"));
        }
        Ok(url)
    }
}

impl Params for CheckUrlParams {
    fn parse(params: &serde_json::Value, _: &Limits) -> Result<Self, SpecError> {
        let obj = params
            .as_object()
            .ok_or_else(|| SpecError::param("url", "is required: params must be an object like {\"url\": \"https://example.com\"}"))?;
        super::no_extra_fields(obj, &["url", "method", "retries", "retry_on", "timeout_ms"], "url")?;
        let url = match obj.get("url") {
            Some(serde_json::Value::String(u)) => Self::parse_url(u, "url")?,
            _ => return Err(SpecError::param("url", "is required: an http or https URL as a string")),
        };
        let method = match obj.get("method") {
            None | Some(serde_json::Value::Null) => CheckMethod::Get,
            Some(serde_json::Value::String(m)) if m.eq_ignore_ascii_case("GET") => CheckMethod::Get,
            Some(serde_json::Value::String(m)) if m.eq_ignore_ascii_case("HEAD") => CheckMethod::Head,
            Some(_) => return Err(SpecError::param("method", "must be \"GET\" or \"HEAD\"")),
        };
        let retries = match obj.get("retries") {
            None | Some(serde_json::Value::Null) => 2,
            Some(v) => super::json_uint(v)
                .filter(|r| *r <= Self::MAX_RETRIES as u64)
                .ok_or_else(|| SpecError::param("retries", format!("must be an integer from 0 to {}", Self::MAX_RETRIES)))? as u32,
        };
        let timeout_ms = match obj.get("timeout_ms") {
            None | Some(serde_json::Value::Null) => 10_000,
            Some(v) => super::json_uint(v).filter(|t| Self::TIMEOUT_MS.contains(t)).ok_or_else(|| {
                SpecError::param("timeout_ms", format!("must be an integer from {} to {}", Self::TIMEOUT_MS.start(), Self::TIMEOUT_MS.end()))
            })?,
        };
        let retry_on = RetryOn::parse(obj.get("retry_on"), "retry_on")?;
        Ok(Self { url, method, retries, retry_on, timeout_ms })
    }

    fn canonical(&self) -> serde_json::Value {
        serde_json::json!({"url": self.url.as_str(), "method": self.method, "retries": self.retries, "retry_on": self.retry_on.names(), "timeout_ms": self.timeout_ms})
    }

    fn schema(_: &Limits) -> serde_json::Value {
        serde_json::json!({
            "type": "object",
            "required": ["url"],
            "additionalProperties": false,
            "properties": {
                "url": Self::url_schema(),
                "method": {"type": ["string", "null"], "pattern": "^([Gg][Ee][Tt]|[Hh][Ee][Aa][Dd])$", "description": "GET (default) or HEAD, in any case"},
                "retries": {"type": ["integer", "null"], "minimum": 0, "maximum": Self::MAX_RETRIES, "description": "Retries of what `retry_on` names (default 2)"},
                "retry_on": RetryOn::schema(),
                "timeout_ms": {"type": ["integer", "null"], "minimum": Self::TIMEOUT_MS.start(), "maximum": Self::TIMEOUT_MS.end(), "description": "Timeout of one attempt (default 10000)"},
            },
            "example": {"url": "https://example.com/"},
        })
    }
}

impl CheckUrlParams {
    /// The JSON Schema of a URL as [`CheckUrlParams::parse_url`] reads it.
    pub fn url_schema() -> serde_json::Value {
        serde_json::json!({
            "type": "string",
            "minLength": 1,
            "maxLength": Self::MAX_URL_LEN,
            "format": "uri-reference",
            "description": "An absolute http or https URL with a host (one without a scheme gets http://); surrounding spaces are ignored",
            "example": "https://example.com/",
        })
    }
}

/// The result of a `check_url` job: the answer the URL gave, or why it gave
/// none (a finding, not a failure of the job).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum CheckUrlResult {
    Answered(CheckAnswer),
    NoAnswer(CheckNoAnswer),
}

/// A URL that answered (`ok` when its final status is 2xx).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CheckAnswer {
    pub url: String,
    /// Where the redirects ended.
    pub final_url: String,
    pub ok: bool,
    /// The final HTTP status.
    pub status: u16,
    /// Every redirect followed, in order.
    pub redirects: Vec<Redirect>,
    pub timings_ms: CheckTimings,
    pub content_type: Option<String>,
    /// Bytes of the body (declared, or read).
    pub content_length: u64,
    /// When the https certificate expires (RFC 3339).
    pub tls_cert_expires_at: Option<String>,
    /// Always null here (set on [`CheckNoAnswer`]).
    #[schema(value_type = Option<CheckFailure>)]
    pub error: Option<CheckFailure>,
    /// Attempts made (the first and the retries `retry_on` asked for).
    pub attempts: u32,
}

/// One redirect of a URL check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Redirect {
    pub url: String,
    pub status: u16,
    pub location: String,
}

/// How long the steps of a URL check's first connection and the whole
/// attempt took, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CheckTimings {
    pub dns: f64,
    pub connect: f64,
    /// Null for http.
    pub tls: Option<f64>,
    pub first_byte: f64,
    pub total: f64,
}

/// A URL that gave no usable answer: `ok` is false and `error` says why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CheckNoAnswer {
    pub url: String,
    pub ok: bool,
    pub error: CheckFailure,
    pub attempts: u32,
    pub timings_ms: CheckTotal,
}

/// Why a URL gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckFailure {
    /// `dns`, `connect`, `timeout`, `tls`, `too_many_redirects`,
    /// `body_too_large`, `blocked` or `http`.
    #[schema(example = "dns")]
    pub kind: String,
    pub message: String,
}

/// The time a URL check took, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CheckTotal {
    pub total: f64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{JobSpec, Limits};
    use serde_json::json;

    #[test]
    fn check_url_adds_http_and_refuses_other_schemes() {
        let p = |v: serde_json::Value| match JobSpec::parse("check_url", &v, &Limits::default()) {
            Ok(JobSpec::CheckUrl(p)) => Ok(p),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e),
        };
        let ok = p(json!({"url": "example.com/x"})).expect("valid");
        assert_eq!(ok.url.as_str(), "http://example.com/x");
        assert_eq!((ok.method, ok.retries, ok.retry_on, ok.timeout_ms), (CheckMethod::Get, 2, RetryOn { network: true, server_error: false }, 10_000));
        let both = p(json!({"url": "a.b", "retry_on": ["5xx", "network", "5xx"]})).expect("valid");
        assert_eq!(both.canonical()["retry_on"], json!(["network", "5xx"]));
        assert_eq!(p(json!({"url": "a.b", "retry_on": []})).expect("valid").retry_on.names(), Vec::<&str>::new());
        for bad in [json!("5xx"), json!(["4xx"]), json!([5])] {
            assert!(p(json!({"url": "a.b", "retry_on": bad})).is_err_and(|e| e.to_string().contains("retry_on")), "{bad}");
        }
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
}
