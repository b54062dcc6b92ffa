//! Crunch's PostgreSQL storage, the only crate that writes SQL.
//!
//! # Layout
//! - [`schema`]: the diesel schema of `migrations/`.
//! - [`models`]: rows (`Selectable`) and borrowed inserts.
//! - [`pool`]: the r2d2 pool and the embedded migrations (run under an advisory
//!   lock, so concurrent start-ups apply them exactly once).
//! - [`error`]: [`StoreError`] and which of its kinds are transient.
//! - [`keys`], [`jobs`], [`events`], [`primes`], [`genes`], [`hotels`],
//!   [`monitors`], [`retention`]: repository functions taking `&mut
//!   PgConnection` (API keys; jobs and their outbox of events; prime chunks;
//!   gene files and sequences; cities, hotels and selections; monitors and
//!   their checks; what expires).
//!
//! Every function here blocks: call them from `web::block` or `spawn_blocking`.

pub mod error;
pub mod events;
pub mod genes;
pub mod hotels;
pub mod jobs;
pub mod keys;
pub mod models;
pub mod monitors;
pub mod pool;
pub mod primes;
pub mod retention;
pub mod schema;

pub use diesel::PgConnection;
pub use error::StoreError;
pub use pool::{connect, ping, run_migrations, try_session_lock, with_custom_plans, PgPool, PoolConfig, PooledConn};
