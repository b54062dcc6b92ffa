use diesel::result::{DatabaseErrorKind, Error as DieselError};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no database connection available")]
    Pool(#[from] diesel::r2d2::PoolError),
    #[error("database query failed")]
    Query(#[from] DieselError),
    #[error("connecting to the database failed")]
    Connection(#[from] diesel::ConnectionError),
    #[error("database migrations failed: {0}")]
    Migration(String),
    /// A batched write could not reach the database (every request of the batch gets this).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A batched write gave no answer for a request.
    #[error("the database returned no row for the request")]
    Missing,
}

impl StoreError {
    /// True when the database could not be reached (the caller answers 503 and
    /// retries later), false for a query that the database refused.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Pool(_) | StoreError::Connection(_) | StoreError::Unavailable(_) => true,
            StoreError::Query(DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, _)) => true,
            StoreError::Query(DieselError::BrokenTransactionManager) => true,
            StoreError::Query(DieselError::DatabaseError(DatabaseErrorKind::Unknown, info)) => {
                let m = info.message();
                m.contains("connection") || m.contains("terminating") || m.contains("server closed")
            }
            _ => false,
        }
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;
