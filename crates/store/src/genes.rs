//! Gene files and their sequences.

use chrono::{DateTime, Utc};
use crunch_domain::{Compression, GeneFormat, OnInvalid};
use diesel::prelude::*;
use uuid::Uuid;

use crate::error::Result;
use crate::PgPool;
use crate::models::JobRow;
use crate::schema::{gene_files, gene_sequences, gene_sequences_pending, jobs};

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
        diesel::delete(gene_sequences_pending::table.filter(gene_sequences_pending::file_id.eq(id))).execute(c)?;
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

/// Sequences encoded for `COPY ... (FORMAT binary)`, straight from the
/// parser's records (no row structs in between): the header, then per row
/// seven fields, each a big-endian length and its bytes.
pub struct CopyRows {
    buf: Vec<u8>,
    rows: usize,
}

/// Encoded bytes per COPY batch at most (one record larger than this makes a
/// batch of its own): the worker's writers and queued batches stay well
/// inside its memory bound.
pub const BATCH_BYTES: usize = 8 << 20;

/// The binary COPY signature, flags and header-extension length.
const COPY_HEADER: &[u8; 19] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

impl Default for CopyRows {
    fn default() -> Self {
        Self { buf: COPY_HEADER.to_vec(), rows: 0 }
    }
}

impl CopyRows {
    /// Appends a row of `gene_sequences`, columns in the table's order.
    #[allow(clippy::too_many_arguments)]
    pub fn push(&mut self, file_id: Uuid, record_index: i64, line_number: i64, name: &str, sequence: &str, length: i64, gc: f64) {
        self.push_with(file_id, record_index, line_number, name, |out| out.extend_from_slice(sequence.as_bytes()), length, gc);
    }

    /// [`CopyRows::push`] with the sequence written by `sequence` (valid
    /// UTF-8, as the parser's records are), so it goes from the parser's
    /// chunk to the buffer in one copy.
    #[allow(clippy::too_many_arguments)]
    pub fn push_with(&mut self, file_id: Uuid, record_index: i64, line_number: i64, name: &str, sequence: impl FnOnce(&mut Vec<u8>), length: i64, gc: f64) {
        // Records are bounded by the parser's record limit, far below 2 GiB.
        fn field(b: &mut Vec<u8>, bytes: &[u8]) {
            b.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
            b.extend_from_slice(bytes);
        }
        let b = &mut self.buf;
        b.extend_from_slice(&7i16.to_be_bytes());
        field(b, file_id.as_bytes());
        field(b, &record_index.to_be_bytes());
        field(b, &line_number.to_be_bytes());
        field(b, name.as_bytes());
        let at = b.len();
        b.extend_from_slice(&[0; 4]);
        sequence(b);
        let len = (b.len() - at - 4) as i32;
        b[at..at + 4].copy_from_slice(&len.to_be_bytes());
        field(b, &length.to_be_bytes());
        field(b, &gc.to_be_bytes());
        self.rows += 1;
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Bytes encoded so far.
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// Writes the rows and the trailer: the body of a `COPY ... FROM STDIN
    /// (FORMAT binary)` with the columns in `gene_sequences`' order.
    pub fn write_to(&self, out: &mut dyn std::io::Write) -> std::result::Result<(), diesel::result::Error> {
        let io = |e: std::io::Error| diesel::result::Error::SerializationError(Box::new(e));
        out.write_all(&self.buf).map_err(io)?;
        out.write_all(&(-1i16).to_be_bytes()).map_err(io)
    }
}

macro_rules! copy_rows {
    ($conn:expr, $table:ident, $rows:expr) => {{
        use crate::schema::$table as t;
        let rows = $rows;
        diesel::copy_from(t::table)
            .from_raw_data((t::file_id, t::record_index, t::line_number, t::name, t::sequence, t::length, t::gc), |out| rows.write_to(out))
            .with_format(diesel::pg::CopyFormat::Binary)
            .execute($conn)
    }};
}

/// Stores one batch in one transaction: `rows` into `gene_sequences` and
/// `pending` (names that may repeat an earlier one) into
/// `gene_sequences_pending`, each with one binary COPY.
pub fn copy_batch(conn: &mut PgConnection, rows: &CopyRows, pending: &CopyRows) -> Result<()> {
    conn.transaction(|c| {
        if rows.rows() > 0 {
            copy_rows!(c, gene_sequences, rows)?;
        }
        if pending.rows() > 0 {
            copy_rows!(c, gene_sequences_pending, pending)?;
        }
        Ok(())
    })
}

/// Moves the checkpoint forward to `records_done` (never back: batches
/// written in parallel commit in any order, and only the caller knows the
/// prefix that is complete).
///
/// Committed without waiting for the WAL flush (`synchronous_commit = off`),
/// which saves one flush per batch. That is safe: WAL is replayed in order,
/// so a checkpoint that survives a server crash comes with every batch it
/// covers, and one that is lost leaves an earlier checkpoint, after which a
/// resume drops and stores again what follows (`drop_after`).
pub fn advance_checkpoint(conn: &mut PgConnection, file_id: Uuid, records_done: i64, checkpoint: &serde_json::Value) -> Result<()> {
    conn.transaction(|c| {
        diesel::sql_query("SET LOCAL synchronous_commit = off").execute(c)?;
        diesel::update(gene_files::table.find(file_id).filter(gene_files::records_done.le(records_done)))
            .set((gene_files::records_done.eq(records_done), gene_files::checkpoint.eq(checkpoint)))
            .execute(c)?;
        Ok(())
    })
}

/// Before a run resumes at `records_done`: removes what batches after the
/// checkpoint stored (parallel writers may have committed them before an
/// earlier batch), so that the parse can store them again exactly once.
pub fn drop_after(conn: &mut PgConnection, file_id: Uuid, records_done: i64) -> Result<()> {
    conn.transaction(|c| {
        diesel::delete(gene_sequences::table.filter(gene_sequences::file_id.eq(file_id)).filter(gene_sequences::record_index.ge(records_done))).execute(c)?;
        diesel::delete(gene_sequences_pending::table.filter(gene_sequences_pending::file_id.eq(file_id)).filter(gene_sequences_pending::record_index.ge(records_done)))
            .execute(c)?;
        Ok(())
    })
}

#[derive(QueryableByName)]
struct Kept {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Ends a file: of the pending sequences, keeps the first of each name that
/// `gene_sequences` does not hold yet, drops the rest (duplicates), and
/// stores the checkpoint `checkpoint(kept)` returns, all in one transaction,
/// so it happens once even if the worker dies here.
///
/// Why this is exact: a name's first record goes to `gene_sequences` unless
/// the Bloom filter took it for a repeat, and every later record of a name
/// is pending (a Bloom filter has no false negatives). So a pending name
/// that `gene_sequences` holds is a duplicate, and otherwise its first
/// pending record is the name's first.
pub fn resolve_pending(conn: &mut PgConnection, file_id: Uuid, checkpoint: impl FnOnce(u64) -> serde_json::Value) -> Result<u64> {
    conn.transaction(|c| {
        // A few pending names against millions of rows: one hash anti-join
        // over the file's rows, never one scan per name.
        diesel::sql_query("SET LOCAL enable_nestloop = off").execute(c)?;
        let kept = diesel::sql_query(
            "WITH p AS (DELETE FROM gene_sequences_pending WHERE file_id = $1 RETURNING *), \
             first AS (SELECT DISTINCT ON (name COLLATE \"C\") * FROM p ORDER BY name COLLATE \"C\", record_index), \
             kept AS (INSERT INTO gene_sequences (file_id, record_index, line_number, name, sequence, length, gc) \
                      SELECT f.file_id, f.record_index, f.line_number, f.name, f.sequence, f.length, f.gc FROM first f \
                      WHERE NOT EXISTS (SELECT 1 FROM gene_sequences s WHERE s.file_id = $1 AND s.name = f.name) RETURNING 1) \
             SELECT count(*) AS n FROM kept",
        )
        .bind::<diesel::sql_types::Uuid, _>(file_id)
        .get_result::<Kept>(c)?
        .n as u64;
        diesel::update(gene_files::table.find(file_id)).set(gene_files::checkpoint.eq(checkpoint(kept))).execute(c)?;
        Ok(kept)
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

/// Appends one sequence as the result document writes it:
/// `{"line_number","gene_name","sequence","length","gc"}`, each value as
/// serde_json writes it. A sequence of letters and `-` (every stored one:
/// the parser admits only IUPAC codes) needs no escaping and is copied as
/// it is; escaping 1 GB of bases was a third of the download's time.
pub fn write_result_item(out: &mut Vec<u8>, row: &GeneSequenceRow) -> serde_json::Result<()> {
    out.extend_from_slice(b"{\"line_number\":");
    serde_json::to_writer(&mut *out, &row.line_number)?;
    out.extend_from_slice(b",\"gene_name\":");
    serde_json::to_writer(&mut *out, &row.name)?;
    out.extend_from_slice(b",\"sequence\":");
    if row.sequence.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-') {
        out.push(b'"');
        out.extend_from_slice(row.sequence.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(&mut *out, &row.sequence)?;
    }
    out.extend_from_slice(b",\"length\":");
    serde_json::to_writer(&mut *out, &row.length)?;
    out.extend_from_slice(b",\"gc\":");
    serde_json::to_writer(&mut *out, &((row.gc * 1e6).round() / 1e6))?;
    out.push(b'}');
    Ok(())
}

/// The result document of a file, `[item, ...]` in file order: `emit` gets
/// each piece (a page of 1,000 record indexes) and stops the walk by
/// returning false. Returns whether the whole document was emitted. For a
/// finished file only (its rows no longer change).
///
/// Two threads read alternate pages, each page by a primary-key range on a
/// connection taken for that page alone (a slow reader holds no connection),
/// while this thread encodes them in order: PostgreSQL's two backends and
/// the encoding work at the same time, and at most five pages are in memory.
pub fn result_document(pool: &PgPool, file_id: Uuid, mut emit: impl FnMut(Vec<u8>) -> bool) -> Result<bool> {
    const PAGE: i64 = 1000;
    const READERS: i64 = 2;
    let last: Option<i64> = {
        let mut conn = pool.get()?;
        gene_sequences::table.filter(gene_sequences::file_id.eq(file_id)).select(diesel::dsl::max(gene_sequences::record_index)).first(&mut conn)?
    };
    let pages = last.map_or(0, |last| last / PAGE + 1);
    std::thread::scope(|scope| {
        let readers: Vec<_> = (0..READERS)
            .map(|first| {
                let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Vec<GeneSequenceRow>>>(1);
                scope.spawn(move || {
                    for page in (first..pages).step_by(READERS as usize) {
                        let rows = pool.get().map_err(crate::StoreError::from).and_then(|mut c| {
                            Ok(gene_sequences::table
                                .filter(gene_sequences::file_id.eq(file_id))
                                .filter(gene_sequences::record_index.ge(page * PAGE))
                                .filter(gene_sequences::record_index.lt((page + 1) * PAGE))
                                .order(gene_sequences::record_index.asc())
                                .select(GeneSequenceRow::as_select())
                                .load(&mut c)?)
                        });
                        let failed = rows.is_err();
                        if tx.send(rows).is_err() || failed {
                            return;
                        }
                    }
                });
                rx
            })
            .collect();
        let mut buf = vec![b'['];
        let mut first = true;
        for page in 0..pages {
            let rows = readers[(page % READERS) as usize].recv().map_err(|_| crate::StoreError::Unavailable("a page reader stopped".into()))??;
            buf.reserve(rows.iter().map(|r| r.sequence.len() + r.name.len() + 96).sum());
            for r in &rows {
                if !first {
                    buf.push(b',');
                }
                first = false;
                write_result_item(&mut buf, r).map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
            }
            if !emit(std::mem::take(&mut buf)) {
                return Ok(false);
            }
        }
        buf.push(b']');
        Ok(emit(buf))
    })
}

#[cfg(test)]
mod tests {
    use super::{write_result_item, GeneSequenceRow};

    #[test]
    fn result_items_are_what_serde_json_writes() {
        let row = |name: &str, sequence: &str| GeneSequenceRow {
            file_id: uuid::Uuid::nil(),
            record_index: 7,
            line_number: 15,
            name: name.into(),
            sequence: sequence.into(),
            length: sequence.len() as i64,
            gc: 1.0 / 3.0,
        };
        for r in [row("NM_1 \"quoted\" \\ tab\t", "acgtNNRY-"), row("plain", "ACGT"), row("odd", "AC\"GT\n"), row("", "")] {
            let mut ours = Vec::new();
            write_result_item(&mut ours, &r).expect("writes");
            let theirs = serde_json::json!({"line_number": r.line_number, "gene_name": r.name, "sequence": r.sequence, "length": r.length, "gc": (r.gc * 1e6).round() / 1e6});
            assert_eq!(serde_json::from_slice::<serde_json::Value>(&ours).expect("valid JSON"), theirs);
            assert!(ours.starts_with(b"{\"line_number\":15,\"gene_name\":"), "the documented order");
        }
    }
}
