//! Stored prime lists (`prime_chunks`).

use diesel::prelude::*;
use uuid::Uuid;

use crate::error::Result;
use crate::models::PrimeChunk;
use crate::schema::prime_chunks;

/// Removes the chunks a previous attempt of the job wrote.
pub fn clear(conn: &mut PgConnection, job_id: Uuid) -> Result<()> {
    diesel::delete(prime_chunks::table.filter(prime_chunks::job_id.eq(job_id))).execute(conn)?;
    Ok(())
}

pub fn insert(conn: &mut PgConnection, chunk: &PrimeChunk) -> Result<()> {
    diesel::insert_into(prime_chunks::table).values(chunk).execute(conn)?;
    Ok(())
}

/// Up to `limit` chunks of the job, starting with the one that contains the
/// prime of index `index`.
pub fn chunks_from(conn: &mut PgConnection, job_id: Uuid, index: i64, limit: i64) -> Result<Vec<PrimeChunk>> {
    let first: Option<i64> = prime_chunks::table
        .filter(prime_chunks::job_id.eq(job_id))
        .filter(prime_chunks::start_index.le(index))
        .order(prime_chunks::start_index.desc())
        .select(prime_chunks::start_index)
        .first(conn)
        .optional()?;
    let Some(first) = first else { return Ok(Vec::new()) };
    Ok(prime_chunks::table
        .filter(prime_chunks::job_id.eq(job_id))
        .filter(prime_chunks::start_index.ge(first))
        .order(prime_chunks::start_index.asc())
        .limit(limit)
        .select(PrimeChunk::as_select())
        .load(conn)?)
}
