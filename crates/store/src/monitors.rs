//! Monitors: a URL checked every interval by a `check_url` job, its history
//! (`monitor_checks`, written by a trigger when each check job ends) and its
//! uptime and response times over 24 hours and 7 days.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Double, Integer, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use uuid::Uuid;

use crate::error::Result;
use crate::models::JobRow;

/// A monitor with what its checks say.
#[derive(Debug, Clone, QueryableByName)]
pub struct MonitorView {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = Text)]
    pub url: String,
    #[diesel(sql_type = Jsonb)]
    pub params: serde_json::Value,
    #[diesel(sql_type = Integer)]
    pub interval_s: i32,
    #[diesel(sql_type = Bool)]
    pub paused: bool,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub next_run_at: DateTime<Utc>,
    /// Checks in the last 24 hours and 7 days, and how many were up.
    #[diesel(sql_type = BigInt)]
    pub checks_24h: i64,
    #[diesel(sql_type = BigInt)]
    pub up_24h: i64,
    #[diesel(sql_type = BigInt)]
    pub checks_7d: i64,
    #[diesel(sql_type = BigInt)]
    pub up_7d: i64,
    /// Response times (ms) over the same windows.
    #[diesel(sql_type = Nullable<Double>)]
    pub p50_ms_24h: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    pub p95_ms_24h: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    pub p50_ms_7d: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    pub p95_ms_7d: Option<f64>,
    /// The latest check.
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub last_checked_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Bool>)]
    pub last_ok: Option<bool>,
    #[diesel(sql_type = Nullable<Integer>)]
    pub last_status: Option<i32>,
    #[diesel(sql_type = Nullable<Text>)]
    pub last_error: Option<String>,
    /// The last 30 checks, oldest first: response time (ms) and up or down.
    #[diesel(sql_type = Array<Nullable<Double>>)]
    pub recent_ms: Vec<Option<f64>>,
    #[diesel(sql_type = Array<Bool>)]
    pub recent_ok: Vec<bool>,
}

/// The view's columns: the monitor `m` and its checks of the last 7 days.
const VIEW: &str = "
SELECT m.id, m.url, m.params, m.interval_s, m.paused, m.created_at, m.next_run_at,
       s.checks_24h, s.up_24h, s.checks_7d, s.up_7d, s.p50_ms_24h, s.p95_ms_24h, s.p50_ms_7d, s.p95_ms_7d,
       l.checked_at AS last_checked_at, l.ok AS last_ok, l.status AS last_status, l.error AS last_error,
       coalesce(r.ms, '{}') AS recent_ms, coalesce(r.ok, '{}') AS recent_ok
  FROM monitors m
  CROSS JOIN LATERAL (
       SELECT count(*) FILTER (WHERE c.checked_at > now() - interval '24 hours') AS checks_24h,
              count(*) FILTER (WHERE c.ok AND c.checked_at > now() - interval '24 hours') AS up_24h,
              count(*) AS checks_7d, count(*) FILTER (WHERE c.ok) AS up_7d,
              percentile_cont(0.5) WITHIN GROUP (ORDER BY c.total_ms) FILTER (WHERE c.checked_at > now() - interval '24 hours') AS p50_ms_24h,
              percentile_cont(0.95) WITHIN GROUP (ORDER BY c.total_ms) FILTER (WHERE c.checked_at > now() - interval '24 hours') AS p95_ms_24h,
              percentile_cont(0.5) WITHIN GROUP (ORDER BY c.total_ms) AS p50_ms_7d,
              percentile_cont(0.95) WITHIN GROUP (ORDER BY c.total_ms) AS p95_ms_7d
         FROM monitor_checks c WHERE c.monitor_id = m.id AND c.checked_at > now() - interval '7 days') s
  LEFT JOIN LATERAL (
       SELECT c.checked_at, c.ok, c.status, c.error FROM monitor_checks c
        WHERE c.monitor_id = m.id ORDER BY c.checked_at DESC LIMIT 1) l ON true
  LEFT JOIN LATERAL (
       SELECT array_agg(t.total_ms ORDER BY t.checked_at) AS ms, array_agg(t.ok ORDER BY t.checked_at) AS ok
         FROM (SELECT c.checked_at, c.total_ms, c.ok FROM monitor_checks c
                WHERE c.monitor_id = m.id ORDER BY c.checked_at DESC LIMIT 30) t) r ON true";

/// One check of a monitor.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = crate::schema::monitor_checks, check_for_backend(diesel::pg::Pg))]
pub struct CheckRow {
    pub checked_at: DateTime<Utc>,
    pub job_id: Uuid,
    pub ok: bool,
    pub status: Option<i32>,
    pub error: Option<String>,
    pub total_ms: Option<f64>,
}

/// A new monitor of `owner`, due at once; `None` when the owner has
/// `max_per_owner` monitors already (decided in the insert itself).
pub fn create(conn: &mut PgConnection, owner: Uuid, url: &str, params: &serde_json::Value, interval_s: i32, max_per_owner: i64) -> Result<Option<MonitorView>> {
    conn.transaction(|conn| {
        let id = Uuid::new_v4();
        let n = diesel::sql_query(
            "INSERT INTO monitors (id, owner_id, url, params, interval_s)
             SELECT $1, $2, $3, $4, $5 WHERE (SELECT count(*) FROM monitors WHERE owner_id = $2) < $6",
        )
        .bind::<SqlUuid, _>(id)
        .bind::<SqlUuid, _>(owner)
        .bind::<Text, _>(url)
        .bind::<Jsonb, _>(params)
        .bind::<Integer, _>(interval_s)
        .bind::<BigInt, _>(max_per_owner)
        .execute(conn)?;
        if n == 0 {
            return Ok(None);
        }
        get_owned(conn, id, owner)
    })
}

/// The owner's monitor, with its figures.
pub fn get_owned(conn: &mut PgConnection, id: Uuid, owner: Uuid) -> Result<Option<MonitorView>> {
    Ok(diesel::sql_query(format!("{VIEW} WHERE m.id = $1 AND m.owner_id = $2"))
        .bind::<SqlUuid, _>(id)
        .bind::<SqlUuid, _>(owner)
        .get_result(conn)
        .optional()?)
}

/// The owner's monitors, oldest first, with their figures.
pub fn list_owned(conn: &mut PgConnection, owner: Uuid) -> Result<Vec<MonitorView>> {
    Ok(diesel::sql_query(format!("{VIEW} WHERE m.owner_id = $1 ORDER BY m.created_at, m.id")).bind::<SqlUuid, _>(owner).load(conn)?)
}

/// Pauses or resumes the owner's monitor (a resumed one is due at once).
pub fn set_paused(conn: &mut PgConnection, id: Uuid, owner: Uuid, paused: bool) -> Result<Option<MonitorView>> {
    use crate::schema::monitors;
    conn.transaction(|conn| {
        let target = monitors::table.filter(monitors::id.eq(id)).filter(monitors::owner_id.eq(owner));
        let n = if paused {
            diesel::update(target).set(monitors::paused.eq(true)).execute(conn)?
        } else {
            diesel::update(target).set((monitors::paused.eq(false), monitors::next_run_at.eq(diesel::dsl::now))).execute(conn)?
        };
        if n == 0 {
            return Ok(None);
        }
        get_owned(conn, id, owner)
    })
}

/// Deletes the owner's monitor and its history; a check under way ends
/// unrecorded.
pub fn delete_owned(conn: &mut PgConnection, id: Uuid, owner: Uuid) -> Result<bool> {
    use crate::schema::monitors;
    Ok(diesel::delete(monitors::table.filter(monitors::id.eq(id)).filter(monitors::owner_id.eq(owner))).execute(conn)? == 1)
}

/// The owner's monitor's checks, newest first, before `before` (a
/// `checked_at`); `None` when the owner has no such monitor.
pub fn checks(conn: &mut PgConnection, id: Uuid, owner: Uuid, before: Option<DateTime<Utc>>, limit: i64) -> Result<Option<Vec<CheckRow>>> {
    use crate::schema::{monitor_checks, monitors};
    let owned = diesel::select(diesel::dsl::exists(monitors::table.filter(monitors::id.eq(id)).filter(monitors::owner_id.eq(owner)))).get_result::<bool>(conn)?;
    if !owned {
        return Ok(None);
    }
    let mut q = monitor_checks::table.filter(monitor_checks::monitor_id.eq(id)).into_boxed();
    if let Some(b) = before {
        q = q.filter(monitor_checks::checked_at.lt(b));
    }
    Ok(Some(q.order(monitor_checks::checked_at.desc()).limit(limit).select(CheckRow::as_select()).load(conn)?))
}

/// Starts a check of up to `limit` due monitors: one `check_url` job each
/// (owned by the monitor's owner, queued, not yet published), the monitor
/// marked busy with it and due again an interval later. Monitors another
/// scheduler holds are skipped. Returns the jobs to publish.
pub fn start_due(conn: &mut PgConnection, limit: i64) -> Result<Vec<JobRow>> {
    conn.transaction(|conn| {
        Ok(diesel::sql_query(
            "WITH due AS (
                 SELECT id, owner_id, params, interval_s, next_run_at FROM monitors
                  WHERE NOT paused AND current_job IS NULL AND next_run_at <= now()
                  ORDER BY next_run_at LIMIT $1 FOR UPDATE SKIP LOCKED),
             made AS (
                 INSERT INTO jobs (id, owner_id, kind, params, dedup_key, monitor_id)
                 SELECT gen_random_uuid(), owner_id, 'check_url', params, sha256(convert_to(id::text || clock_timestamp()::text, 'UTF8')), id
                   FROM due
                 RETURNING *),
             marked AS (
                 UPDATE monitors m SET current_job = made.id,
                        next_run_at = greatest(due.next_run_at + make_interval(secs => due.interval_s), now())
                   FROM made JOIN due ON due.id = made.monitor_id
                  WHERE m.id = made.monitor_id)
             SELECT * FROM made",
        )
        .bind::<BigInt, _>(limit)
        .load(conn)?)
    })
}

/// Removes up to `limit` checks older than `before`; returns how many.
pub fn expire_checks(conn: &mut PgConnection, before: DateTime<Utc>, limit: i64) -> Result<usize> {
    Ok(diesel::sql_query(
        "DELETE FROM monitor_checks WHERE (monitor_id, checked_at, job_id) IN
            (SELECT monitor_id, checked_at, job_id FROM monitor_checks WHERE checked_at < $1 LIMIT $2)",
    )
    .bind::<Timestamptz, _>(before)
    .bind::<BigInt, _>(limit)
    .execute(conn)?)
}
