pub mod dashboard;
pub mod events;
pub mod genes;
pub mod health;
pub mod hotels;
pub mod jobs;
pub mod results;
pub mod url_checks;

/// A query parameter given empty (`?kind=`) counts as not given.
pub fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

/// `offset` (default 0, at least 0) and `limit` (default `default`, 1..=`max`)
/// of a paged listing, or the 400 naming both rules.
pub fn page(offset: Option<i64>, limit: Option<i64>, default: i64, max: i64) -> Result<(i64, i64), crate::error::ApiError> {
    let (offset, limit) = (offset.unwrap_or(0), limit.unwrap_or(default));
    if offset < 0 || !(1..=max).contains(&limit) {
        return Err(crate::error::ApiError::bad_request("invalid_query", format!("offset must be at least 0 and limit between 1 and {max}")));
    }
    Ok((offset, limit))
}
