use std::time::Duration;

use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, Pool};
use diesel::sql_types::BigInt;
use diesel::RunQueryDsl;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::error::{Result, StoreError};

pub type PgPool = Pool<ConnectionManager<PgConnection>>;
/// A connection taken from the pool (returned when dropped).
pub type PooledConn = diesel::r2d2::PooledConnection<ConnectionManager<PgConnection>>;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// An arbitrary constant: the advisory lock held while migrations run.
const MIGRATION_LOCK: i64 = 0x6372_756e_6368_0001;

#[derive(Debug, Clone)]
pub struct PoolConfig {
    pub url: String,
    pub max_size: u32,
    /// How long a caller waits for a connection before giving up (and the API
    /// answers 503): short, so an outage never turns into hanging requests.
    pub connect_timeout: Duration,
}

/// Builds the pool without requiring the database to be up: connections are
/// made lazily, so a service starts and reports itself not ready instead of
/// crashing while PostgreSQL is down.
pub fn connect(cfg: &PoolConfig) -> Result<PgPool> {
    let manager = ConnectionManager::<PgConnection>::new(&cfg.url);
    Ok(Pool::builder()
        .max_size(cfg.max_size)
        .min_idle(Some(0))
        .connection_timeout(cfg.connect_timeout)
        .test_on_check_out(true)
        .build_unchecked(manager))
}

/// Applies pending migrations, holding an advisory lock so that several
/// replicas starting at once apply them exactly once.
pub fn run_migrations(conn: &mut PgConnection) -> Result<Vec<String>> {
    diesel::sql_query("SELECT pg_advisory_lock($1)").bind::<BigInt, _>(MIGRATION_LOCK).execute(conn)?;
    let applied = conn
        .run_pending_migrations(MIGRATIONS)
        .map(|v| v.iter().map(|m| m.to_string()).collect())
        .map_err(|e| StoreError::Migration(e.to_string()));
    diesel::sql_query("SELECT pg_advisory_unlock($1)").bind::<BigInt, _>(MIGRATION_LOCK).execute(conn)?;
    applied
}

/// Runs `f` in a transaction planned for its actual arguments. For the batch
/// statements (`= ANY(<array of hundreds>)`): diesel prepares and caches
/// them, and PostgreSQL switches a prepared statement to a generic plan after
/// five runs and keeps it until the table is analysed again. A generic plan
/// made while a table is small (a new deployment) is a sequential scan, and it
/// stays one as the table grows: measured 30-80 ms per lookup of 256 keys at
/// 6,000 rows, growing with the table, until autovacuum's first ANALYZE.
/// Planning a batch each time costs well under a millisecond.
pub fn with_custom_plans<T>(conn: &mut PgConnection, f: impl FnOnce(&mut PgConnection) -> Result<T>) -> Result<T> {
    use diesel::Connection;
    conn.transaction(|conn| {
        diesel::sql_query("SET LOCAL plan_cache_mode = force_custom_plan").execute(conn)?;
        f(conn)
    })
}

/// `SELECT 1`: the readiness probe.
pub fn ping(conn: &mut PgConnection) -> Result<()> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    Ok(())
}

/// Tries to take a session-level advisory lock, held until the connection
/// closes: leader election among replicas (the demo traffic generator).
pub fn try_session_lock(conn: &mut PgConnection, key: i64) -> Result<bool> {
    #[derive(diesel::QueryableByName)]
    struct Locked {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        locked: bool,
    }
    let row: Locked = diesel::sql_query("SELECT pg_try_advisory_lock($1) AS locked").bind::<BigInt, _>(key).get_result(conn)?;
    Ok(row.locked)
}
