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
    /// retries later), false for a query that the database refused. Decided
    /// by error kinds only: diesel reports a connection that broke during a
    /// statement (SQLSTATE class 08, or any error after which the connection
    /// is bad, such as an administrator's shutdown) as `ClosedConnection`, and
    /// a statement it could not send as `UnableToSendCommand`.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Pool(_) | StoreError::Connection(_) | StoreError::Unavailable(_) => true,
            StoreError::Query(DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand, _)) => true,
            StoreError::Query(DieselError::BrokenTransactionManager) => true,
            _ => false,
        }
    }

    /// What the database said, for a dead-letter reason or an error message:
    /// the error kind and the server's message.
    pub fn reason(&self) -> String {
        match self {
            StoreError::Query(DieselError::DatabaseError(kind, info)) => format!("{kind:?}: {}", info.message()),
            other => format!("{other}: {}", std::error::Error::source(other).map(|s| s.to_string()).unwrap_or_default()),
        }
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;
