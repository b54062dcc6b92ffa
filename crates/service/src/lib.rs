//! Plumbing shared by `crunch-gateway`, `crunch-worker` and `crunch-persister`.
//!
//! Configuration is layered: built-in defaults < `.env` at the working
//! directory (or the file named by `CRUNCH_ENV_FILE`) < process environment <
//! command-line flags. For every variable `X` a variable `X_FILE` naming a file
//! (a Docker secret) is read into `X` when `X` itself is not set (for the
//! variables of Crunch: `CRUNCH_*`, `DATABASE_*`, `AMQP_*`, `KAFKA_*`, `S3_*`).

//!
//! # Layout
//! - [`config`]: the layered environment and the shared argument groups.
//! - [`runtime`]: memory settings, logs, signals, the exit status.
//! - [`startup`]: migrations at start-up, retried until the database answers.
//! - [`health`]: `/healthz`, `/readyz` and `/metrics` of the worker and the persister.
//! - [`metrics`]: what the consuming services count.
//! - [`batch`]: group commit and batched background writes.

pub mod batch;
pub mod config;
pub mod health;
pub mod metrics;
pub mod runtime;
pub mod startup;

pub use batch::{spawn_batch_writer, GroupCommit};
pub use config::{load_environment, redact_url, AmqpArgs, CoreArgs, DbArgs, KafkaArgs, LimitArgs};
pub use health::{database_reachable, spawn_health_server, Readiness};
pub use runtime::{disable_transparent_huge_pages, exit_status, init_tracing, shutdown_signal};
pub use startup::{migrate_on_start, retry_until, Backoff};
