//! Retention: finished jobs expire, with what hangs off them (events, prime
//! chunks, shards, gene files); deleted gene files lose their sequences in
//! small batches, then their blobs (the caller's part), then their row. Each
//! step is one short transaction that takes rows with `SKIP LOCKED`, so a
//! sweep never waits for, nor holds up, the job path or another sweeper.

use chrono::{DateTime, Utc};
use crunch_domain::JobKind;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Text, Timestamptz, Uuid as SqlUuid};
use uuid::Uuid;

use crate::error::Result;

/// What one [`expire_jobs`] batch removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Expired {
    pub jobs: usize,
    pub prime_chunks: usize,
    /// Gene files handed to [`purge_gene_file`].
    pub gene_files: usize,
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

/// Up to `limit` jobs of `kind` that ended before `before`, oldest first,
/// removed in one transaction: their prime chunks (shards' included), their
/// events and shards (by cascade); their gene files are marked deleted for
/// [`purge_gene_file`].
pub fn expire_jobs(conn: &mut PgConnection, kind: JobKind, before: DateTime<Utc>, limit: i64) -> Result<Expired> {
    conn.transaction(|conn| {
        let ids: Vec<Uuid> = diesel::sql_query(
            "SELECT id FROM jobs WHERE kind = $1 AND finished_at < $2 AND finished_at IS NOT NULL AND parent_id IS NULL
              ORDER BY finished_at LIMIT $3 FOR UPDATE SKIP LOCKED",
        )
        .bind::<Text, _>(kind.as_str())
        .bind::<Timestamptz, _>(before)
        .bind::<BigInt, _>(limit)
        .load::<Id>(conn)?
        .into_iter()
        .map(|r| r.id)
        .collect();
        if ids.is_empty() {
            return Ok(Expired::default());
        }
        let prime_chunks = diesel::sql_query(
            "DELETE FROM prime_chunks WHERE job_id = ANY($1 || ARRAY(SELECT id FROM jobs WHERE parent_id = ANY($1)))",
        )
        .bind::<Array<SqlUuid>, _>(&ids)
        .execute(conn)?;
        let gene_files = diesel::sql_query("UPDATE gene_files SET deleted_at = coalesce(deleted_at, now()), job_id = NULL WHERE job_id = ANY($1)")
            .bind::<Array<SqlUuid>, _>(&ids)
            .execute(conn)?;
        let jobs = diesel::sql_query("DELETE FROM jobs WHERE id = ANY($1)").bind::<Array<SqlUuid>, _>(&ids).execute(conn)?;
        Ok(Expired { jobs, prime_chunks, gene_files })
    })
}

/// Up to `limit` monitors' check jobs that ended before `before`, removed
/// (their outcome is kept in `monitor_checks`); returns how many.
pub fn expire_monitor_jobs(conn: &mut PgConnection, before: DateTime<Utc>, limit: i64) -> Result<usize> {
    Ok(diesel::sql_query(
        "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE monitor_id IS NOT NULL AND finished_at IS NOT NULL AND finished_at < $1
                                        ORDER BY finished_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
    )
    .bind::<Timestamptz, _>(before)
    .bind::<BigInt, _>(limit)
    .execute(conn)?)
}

/// Marks up to `limit` gene files that were created before `before` and never
/// parsed (no job) as deleted; returns how many.
pub fn expire_unparsed_gene_files(conn: &mut PgConnection, before: DateTime<Utc>, limit: i64) -> Result<usize> {
    Ok(diesel::sql_query(
        "UPDATE gene_files SET deleted_at = now()
          WHERE id IN (SELECT id FROM gene_files WHERE job_id IS NULL AND deleted_at IS NULL AND created_at < $1
                        ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
    )
    .bind::<Timestamptz, _>(before)
    .bind::<BigInt, _>(limit)
    .execute(conn)?)
}

/// One step of removing a deleted gene file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PurgeStep {
    /// No file is waiting.
    Idle,
    /// This many of a file's sequences were removed; more may be left.
    Sequences(usize),
    /// A file has no sequences left: delete these blobs, then call
    /// [`forget_gene_file`].
    Blobs { file_id: Uuid, keys: Vec<String> },
}

#[derive(QueryableByName)]
struct Doomed {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    object_key: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    result_key: Option<String>,
}

/// Removes up to `limit` sequences (and as many pending ones) of the oldest
/// deleted gene file, or, when it has none left, names its blobs.
pub fn purge_gene_file(conn: &mut PgConnection, limit: i64) -> Result<PurgeStep> {
    conn.transaction(|conn| {
        let Some(file) = diesel::sql_query(
            "SELECT id, object_key, result_key FROM gene_files WHERE deleted_at IS NOT NULL ORDER BY deleted_at LIMIT 1 FOR UPDATE SKIP LOCKED",
        )
        .get_result::<Doomed>(conn)
        .optional()?
        else {
            return Ok(PurgeStep::Idle);
        };
        let mut n = 0;
        for table in ["gene_sequences", "gene_sequences_pending"] {
            n += diesel::sql_query(format!(
                "DELETE FROM {table} WHERE file_id = $1
                    AND record_index IN (SELECT record_index FROM {table} WHERE file_id = $1 ORDER BY record_index LIMIT $2)"
            ))
            .bind::<SqlUuid, _>(file.id)
            .bind::<BigInt, _>(limit)
            .execute(conn)?;
        }
        if n > 0 {
            return Ok(PurgeStep::Sequences(n));
        }
        Ok(PurgeStep::Blobs { file_id: file.id, keys: std::iter::once(file.object_key).chain(file.result_key).collect() })
    })
}

/// Removes a deleted gene file's row (its blobs are gone).
pub fn forget_gene_file(conn: &mut PgConnection, file_id: Uuid) -> Result<bool> {
    Ok(diesel::sql_query("DELETE FROM gene_files WHERE id = $1 AND deleted_at IS NOT NULL").bind::<SqlUuid, _>(file_id).execute(conn)? == 1)
}
