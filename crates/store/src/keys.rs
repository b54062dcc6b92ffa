//! API keys.

use diesel::prelude::*;
use uuid::Uuid;

use crate::error::Result;
use crate::models::{ApiKeyRow, NewApiKey};
use crate::schema::api_keys;

pub fn insert_key(conn: &mut PgConnection, name: &str, key_hash: &[u8]) -> Result<ApiKeyRow> {
    let row = diesel::insert_into(api_keys::table)
        .values(NewApiKey { id: Uuid::new_v4(), name, key_hash })
        .returning(ApiKeyRow::as_returning())
        .get_result(conn)?;
    Ok(row)
}

/// The active (not revoked) key with this hash.
pub fn find_active_by_hash(conn: &mut PgConnection, key_hash: &[u8]) -> Result<Option<ApiKeyRow>> {
    Ok(api_keys::table
        .filter(api_keys::key_hash.eq(key_hash))
        .filter(api_keys::revoked_at.is_null())
        .select(ApiKeyRow::as_select())
        .first(conn)
        .optional()?)
}

/// Whether the key with this id exists and is not revoked.
pub fn is_active(conn: &mut PgConnection, id: Uuid) -> Result<bool> {
    use diesel::dsl::exists;
    Ok(diesel::select(exists(api_keys::table.filter(api_keys::id.eq(id)).filter(api_keys::revoked_at.is_null()))).get_result(conn)?)
}

pub fn list_keys(conn: &mut PgConnection) -> Result<Vec<ApiKeyRow>> {
    Ok(api_keys::table.order(api_keys::created_at.asc()).select(ApiKeyRow::as_select()).load(conn)?)
}

/// Revokes a key by id; `false` when no active key has that id.
pub fn revoke_key(conn: &mut PgConnection, id: Uuid) -> Result<bool> {
    let n = diesel::update(api_keys::table.filter(api_keys::id.eq(id)).filter(api_keys::revoked_at.is_null()))
        .set(api_keys::revoked_at.eq(diesel::dsl::now))
        .execute(conn)?;
    Ok(n == 1)
}

/// Inserts a key with this hash unless one exists (the deployment's admin key,
/// given as a secret, is registered at every start-up). `true` if inserted.
pub fn ensure_key(conn: &mut PgConnection, name: &str, key_hash: &[u8]) -> Result<bool> {
    let n = diesel::insert_into(api_keys::table)
        .values(NewApiKey { id: Uuid::new_v4(), name, key_hash })
        .on_conflict(api_keys::key_hash)
        .do_nothing()
        .execute(conn)?;
    Ok(n == 1)
}

/// The oldest active key with this name (the demo traffic generator submits
/// as a named key).
pub fn find_active_by_name(conn: &mut PgConnection, name: &str) -> Result<Option<ApiKeyRow>> {
    Ok(api_keys::table
        .filter(api_keys::name.eq(name))
        .filter(api_keys::revoked_at.is_null())
        .order(api_keys::created_at.asc())
        .select(ApiKeyRow::as_select())
        .first(conn)
        .optional()?)
}
