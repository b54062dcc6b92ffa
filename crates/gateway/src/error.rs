//! The gateway's one error type, one status mapping and one body shape.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use crunch_domain::{ErrorBody, SpecError};
use crunch_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { code: &'static str, message: String, field: Option<String>, details: Option<serde_json::Value> },
    #[error("a valid API key is required: send 'Authorization: Bearer <key>'")]
    Unauthorized,
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Ids in a request body that name nothing: 404, the ids in `details`.
    #[error("{message}")]
    UnknownIds { message: String, field: &'static str, details: serde_json::Value },
    /// The path exists, the method does not: the methods it takes.
    #[error("method not allowed here; this path takes {}", .0.join(", "))]
    MethodNotAllowed(Vec<String>),
    #[error("{0}")]
    Conflict(String),
    #[error("request body is larger than the limit of {0} bytes")]
    PayloadTooLarge(usize),
    #[error("too many requests for this API key; try again in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// A quota other than the key's request rate: 429 with `Retry-After`.
    #[error("{message}")]
    Quota { code: &'static str, message: String, retry_after_secs: u64 },
    #[error("{0}")]
    RequestTimeout(String),
    #[error("{0} is unavailable, try again shortly")]
    Unavailable(&'static str),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest { code, message: message.into(), field: None, details: None }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { code, .. } => code,
            ApiError::Unauthorized => "unauthorized",
            ApiError::NotFound(_) | ApiError::UnknownIds { .. } => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Quota { code, .. } => code,
            ApiError::RequestTimeout(_) => "request_timeout",
            ApiError::Unavailable(_) => "service_unavailable",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl From<SpecError> for ApiError {
    fn from(e: SpecError) -> Self {
        let details = match &e {
            SpecError::UnknownKind(_) => Some(serde_json::json!({ "valid_kinds": crunch_domain::JobKind::names() })),
            SpecError::InvalidParam { .. } | SpecError::Field { .. } => None,
        };
        ApiError::BadRequest { code: e.code(), message: e.message(), field: Some(e.field()), details }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            tracing::warn!(error = %e, "database unavailable");
            ApiError::Unavailable("the database")
        } else {
            ApiError::Internal(anyhow::Error::new(e))
        }
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        ApiError::Internal(anyhow::anyhow!("blocking task failed: {e}"))
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) | ApiError::UnknownIds { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RateLimited { .. } | ApiError::Quota { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut body = ErrorBody::new(self.code(), self.to_string());
        match self {
            ApiError::BadRequest { field, details, .. } => {
                body.error.field = field.clone();
                body.error.details = details.clone();
            }
            ApiError::UnknownIds { field, details, .. } => {
                body.error.field = Some((*field).to_owned());
                body.error.details = Some(details.clone());
            }
            ApiError::Internal(e) => tracing::error!(error = ?e, "internal error"),
            _ => {}
        }
        let mut resp = HttpResponse::build(self.status_code());
        if matches!(self, ApiError::Unauthorized) {
            resp.insert_header(("WWW-Authenticate", "Bearer"));
        }
        if matches!(self, ApiError::Unavailable(_)) {
            resp.insert_header(("Retry-After", "2"));
        }
        if let ApiError::RateLimited { retry_after_secs } | ApiError::Quota { retry_after_secs, .. } = self {
            resp.insert_header(("Retry-After", retry_after_secs.to_string()));
        }
        if let ApiError::RequestTimeout(_) = self {
            resp.insert_header(("Connection", "close"));
        }
        if let ApiError::MethodNotAllowed(methods) = self {
            resp.insert_header(("Allow", methods.join(", ")));
        }
        resp.json(body)
    }
}

/// Turns extractor errors (bad JSON, oversized bodies, bad query strings) into
/// the same body shape instead of actix's plain-text defaults.
pub fn json_error(err: actix_web::error::JsonPayloadError, limit: usize) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as J;
    let api = match &err {
        J::OverflowKnownLength { .. } | J::Overflow { .. } => ApiError::PayloadTooLarge(limit),
        J::ContentType => ApiError::bad_request("unsupported_content_type", "the body must be JSON (Content-Type: application/json)"),
        J::Deserialize(e) => ApiError::bad_request("invalid_json", format!("the body is not valid JSON for this endpoint: {e}")),
        J::Payload(actix_web::error::PayloadError::Overflow) => ApiError::PayloadTooLarge(limit),
        J::Payload(p) => match crate::protect::timed_out(p) {
            Some(why) => ApiError::RequestTimeout(why),
            None => ApiError::bad_request("invalid_body", format!("the body could not be read: {p}")),
        },
        other => ApiError::bad_request("invalid_body", format!("the body could not be read: {other}")),
    };
    actix_web::error::InternalError::from_response(err, api.error_response()).into()
}

pub fn query_error(err: actix_web::error::QueryPayloadError) -> actix_web::Error {
    let api = ApiError::bad_request("invalid_query", format!("invalid query string: {err}"));
    actix_web::error::InternalError::from_response(err, api.error_response()).into()
}

pub fn path_error(err: actix_web::error::PathError) -> actix_web::Error {
    let api = ApiError::NotFound("resource");
    actix_web::error::InternalError::from_response(err, api.error_response()).into()
}
