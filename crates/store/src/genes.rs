//! Gene files and their sequences.

use chrono::{DateTime, Utc};
use crunch_domain::{Compression, GeneFormat, OnInvalid};
use diesel::prelude::*;
use uuid::Uuid;

use crate::error::Result;
use crate::models::JobRow;
use crate::schema::{gene_files, gene_sequences, jobs};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = gene_files, check_for_backend(diesel::pg::Pg))]
pub struct GeneFileRow {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub file_name: String,
    pub format: GeneFormat,
    pub compression: Option<Compression>,
    pub on_invalid: OnInvalid,
    pub object_key: String,
    pub size_bytes: Option<i64>,
    pub uploaded_at: Option<DateTime<Utc>>,
    pub job_id: Option<Uuid>,
    pub records_done: i64,
    pub checkpoint: Option<serde_json::Value>,
    pub result_key: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = gene_files)]
pub struct NewGeneFile<'a> {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub file_name: &'a str,
    pub format: GeneFormat,
    pub compression: Option<Compression>,
    pub on_invalid: OnInvalid,
    pub object_key: &'a str,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = gene_sequences, check_for_backend(diesel::pg::Pg))]
pub struct GeneSequenceRow {
    pub file_id: Uuid,
    pub record_index: i64,
    pub line_number: i64,
    pub name: String,
    pub sequence: String,
    pub length: i64,
    pub gc: f64,
}

pub fn create(conn: &mut PgConnection, new: NewGeneFile<'_>) -> Result<GeneFileRow> {
    Ok(diesel::insert_into(gene_files::table).values(&new).returning(GeneFileRow::as_returning()).get_result(conn)?)
}

/// The file, unless it was deleted.
pub fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<GeneFileRow>> {
    Ok(gene_files::table.find(id).filter(gene_files::deleted_at.is_null()).select(GeneFileRow::as_select()).first(conn).optional()?)
}

/// The caller's file with its current job, if any.
pub fn get_owned(conn: &mut PgConnection, id: Uuid, owner: Uuid) -> Result<Option<(GeneFileRow, Option<JobRow>)>> {
    Ok(gene_files::table
        .left_join(jobs::table)
        .filter(gene_files::id.eq(id))
        .filter(gene_files::owner_id.eq(owner))
        .filter(gene_files::deleted_at.is_null())
        .select((GeneFileRow::as_select(), Option::<JobRow>::as_select()))
        .first(conn)
        .optional()?)
}

/// The caller's files, newest first, and how many there are.
pub fn list_owned(conn: &mut PgConnection, owner: Uuid, offset: i64, limit: i64) -> Result<(Vec<(GeneFileRow, Option<JobRow>)>, i64)> {
    let total = gene_files::table.filter(gene_files::owner_id.eq(owner)).filter(gene_files::deleted_at.is_null()).count().get_result(conn)?;
    let rows = gene_files::table
        .left_join(jobs::table)
        .filter(gene_files::owner_id.eq(owner))
        .filter(gene_files::deleted_at.is_null())
        .order(gene_files::created_at.desc())
        .offset(offset)
        .limit(limit)
        .select((GeneFileRow::as_select(), Option::<JobRow>::as_select()))
        .load(conn)?;
    Ok((rows, total))
}

pub fn mark_uploaded(conn: &mut PgConnection, id: Uuid, size: i64) -> Result<()> {
    diesel::update(gene_files::table.find(id))
        .set((gene_files::size_bytes.eq(size), gene_files::uploaded_at.eq(diesel::dsl::now)))
        .execute(conn)?;
    Ok(())
}

/// Claims the file for one upload or start (`claim`, a fresh token): succeeds
/// unless another claim younger than `stale_secs` holds it or the file's job
/// is queued, running or done. Decided in one statement, so two concurrent
/// uploads cannot both pass.
pub fn claim_upload(conn: &mut PgConnection, id: Uuid, owner: Uuid, claim: Uuid, stale_secs: i64) -> Result<bool> {
    let n = diesel::sql_query(
        "UPDATE gene_files f SET upload_claim = $3, upload_claimed_at = now() \
         WHERE f.id = $1 AND f.owner_id = $2 AND f.deleted_at IS NULL \
           AND (f.upload_claim IS NULL OR f.upload_claimed_at < now() - make_interval(secs => $4)) \
           AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = f.job_id AND j.status IN ('queued', 'running', 'succeeded'))",
    )
    .bind::<diesel::sql_types::Uuid, _>(id)
    .bind::<diesel::sql_types::Uuid, _>(owner)
    .bind::<diesel::sql_types::Uuid, _>(claim)
    .bind::<diesel::sql_types::Double, _>(stale_secs as f64)
    .execute(conn)?;
    Ok(n == 1)
}

/// What deleting a gene file did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    /// Gone from the API; the sweeper removes its sequences and blobs.
    Marked,
    /// No such file of this owner (or deleted already).
    NotFound,
    /// Its job is queued or running, or an upload is under way.
    Busy,
}

/// Deletes the owner's file unless its job is queued or running or an upload
/// holds a claim younger than `stale_secs`: it disappears from every read at
/// once, and [`crate::retention::purge_gene_file`] removes the rest.
pub fn delete_owned(conn: &mut PgConnection, id: Uuid, owner: Uuid, stale_secs: i64) -> Result<Deleted> {
    let n = diesel::sql_query(
        "UPDATE gene_files f SET deleted_at = now() \
         WHERE f.id = $1 AND f.owner_id = $2 AND f.deleted_at IS NULL \
           AND (f.upload_claim IS NULL OR f.upload_claimed_at < now() - make_interval(secs => $3)) \
           AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = f.job_id AND j.status IN ('queued', 'running'))",
    )
    .bind::<diesel::sql_types::Uuid, _>(id)
    .bind::<diesel::sql_types::Uuid, _>(owner)
    .bind::<diesel::sql_types::Double, _>(stale_secs as f64)
    .execute(conn)?;
    if n == 1 {
        return Ok(Deleted::Marked);
    }
    Ok(if get_owned(conn, id, owner)?.is_some() { Deleted::Busy } else { Deleted::NotFound })
}

/// Keeps a claim fresh while its upload runs.
pub fn refresh_upload_claim(conn: &mut PgConnection, id: Uuid, claim: Uuid) -> Result<()> {
    diesel::update(gene_files::table.find(id).filter(gene_files::upload_claim.eq(claim)))
        .set(gene_files::upload_claimed_at.eq(diesel::dsl::now))
        .execute(conn)?;
    Ok(())
}

/// Releases a claim (if it is still this one).
pub fn release_upload(conn: &mut PgConnection, id: Uuid, claim: Uuid) -> Result<()> {
    diesel::update(gene_files::table.find(id).filter(gene_files::upload_claim.eq(claim)))
        .set((gene_files::upload_claim.eq(None::<Uuid>), gene_files::upload_claimed_at.eq(None::<DateTime<Utc>>)))
        .execute(conn)?;
    Ok(())
}

/// Before a new run of the file: forget what an earlier (failed or
/// cancelled) run stored and detach its job; `set_job` attaches the new one.
pub fn reset_run(conn: &mut PgConnection, id: Uuid) -> Result<()> {
    conn.transaction(|c| {
        diesel::delete(gene_sequences::table.filter(gene_sequences::file_id.eq(id))).execute(c)?;
        diesel::update(gene_files::table.find(id))
            .set((
                gene_files::job_id.eq(None::<Uuid>),
                gene_files::records_done.eq(0),
                gene_files::checkpoint.eq(None::<serde_json::Value>),
                gene_files::result_key.eq(None::<String>),
            ))
            .execute(c)?;
        Ok(())
    })
}

pub fn set_job(conn: &mut PgConnection, id: Uuid, job_id: Uuid) -> Result<()> {
    diesel::update(gene_files::table.find(id)).set(gene_files::job_id.eq(job_id)).execute(conn)?;
    Ok(())
}

/// Stores a batch of sequences and the checkpoint in one transaction; the
/// first sequence of each name wins. `checkpoint` gets how many were inserted
/// (the rest were duplicate names) and returns the checkpoint to store.
pub fn store_batch(
    conn: &mut PgConnection,
    file_id: Uuid,
    rows: &[GeneSequenceRow],
    records_done: i64,
    checkpoint: impl FnOnce(usize) -> serde_json::Value,
) -> Result<usize> {
    conn.transaction(|c| {
        let mut inserted = 0;
        // 7 binds a row, PostgreSQL takes at most 65535 binds a statement.
        for part in rows.chunks(9000) {
            inserted += diesel::insert_into(gene_sequences::table).values(part).on_conflict_do_nothing().execute(c)?;
        }
        diesel::update(gene_files::table.find(file_id))
            .set((gene_files::records_done.eq(records_done), gene_files::checkpoint.eq(checkpoint(inserted))))
            .execute(c)?;
        Ok(inserted)
    })
}

pub fn set_result_key(conn: &mut PgConnection, id: Uuid, key: &str) -> Result<()> {
    diesel::update(gene_files::table.find(id)).set(gene_files::result_key.eq(key)).execute(conn)?;
    Ok(())
}

/// A page of the file's sequences in file order; `name` filters by a
/// case-insensitive substring.
pub fn sequences_page(conn: &mut PgConnection, file_id: Uuid, name: Option<&str>, offset: i64, limit: i64) -> Result<(Vec<GeneSequenceRow>, i64)> {
    let pattern = crate::hotels::contains(name);
    let mut count = gene_sequences::table.filter(gene_sequences::file_id.eq(file_id)).into_boxed();
    let mut page = gene_sequences::table.filter(gene_sequences::file_id.eq(file_id)).into_boxed();
    if let Some(p) = &pattern {
        count = count.filter(gene_sequences::name.ilike(p.clone()));
        page = page.filter(gene_sequences::name.ilike(p.clone()));
    }
    let total = count.count().get_result(conn)?;
    let rows = page.order(gene_sequences::record_index.asc()).offset(offset).limit(limit).select(GeneSequenceRow::as_select()).load(conn)?;
    Ok((rows, total))
}

/// Up to `limit` sequences after record `after` (keyset pagination, for
/// streaming a whole file's result in bounded memory).
pub fn sequences_after(conn: &mut PgConnection, file_id: Uuid, after: i64, limit: i64) -> Result<Vec<GeneSequenceRow>> {
    Ok(gene_sequences::table
        .filter(gene_sequences::file_id.eq(file_id))
        .filter(gene_sequences::record_index.gt(after))
        .order(gene_sequences::record_index.asc())
        .limit(limit)
        .select(GeneSequenceRow::as_select())
        .load(conn)?)
}

/// One sequence as the result document writes it:
/// `{"line_number", "gene_name", "sequence", "length", "gc"}`.
pub fn result_item(row: &GeneSequenceRow) -> serde_json::Value {
    serde_json::json!({
        "line_number": row.line_number,
        "gene_name": row.name,
        "sequence": row.sequence,
        "length": row.length,
        "gc": (row.gc * 1e6).round() / 1e6,
    })
}
