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
