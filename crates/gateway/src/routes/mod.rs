pub mod dashboard;
pub mod events;
pub mod genes;
pub mod health;
pub mod hotels;
pub mod jobs;
pub mod monitors;
pub mod results;
pub mod stats;
pub mod url_checks;

/// Registers every route; utoipa-actix-web collects the OpenAPI operation of
/// each as it is registered, so the document cannot miss a route.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    jobs::configure(cfg);
    results::configure(cfg);
    url_checks::configure(cfg);
    stats::configure(cfg);
    monitors::configure(cfg);
    hotels::configure(cfg);
    genes::configure(cfg);
    events::configure(cfg);
    health::configure(cfg);
    dashboard::configure(cfg);
}

/// A query parameter given empty (`?kind=`) counts as not given.
pub fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

/// `offset` (default 0, at least 0) and `limit` (default `default`, 1..=`max`)
/// of a paged listing, or a 400 naming the rule broken.
pub fn page(offset: Option<i64>, limit: Option<i64>, default: i64, max: i64) -> Result<(i64, i64), crate::error::ApiError> {
    let offset = offset.unwrap_or(0);
    if offset < 0 {
        return Err(crate::error::ApiError::bad_request("invalid_query", "offset must be at least 0"));
    }
    Ok((offset, self::limit(limit, default, max)?))
}

/// A page size: `default` when absent, else 1 to `max`.
pub fn limit(limit: Option<i64>, default: i64, max: i64) -> Result<i64, crate::error::ApiError> {
    let limit = limit.unwrap_or(default);
    if !(1..=max).contains(&limit) {
        return Err(crate::error::ApiError::bad_request("invalid_query", format!("limit must be between 1 and {max}")));
    }
    Ok(limit)
}
