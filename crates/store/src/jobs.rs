//! Jobs: submission (with identical-request reuse), reads, cancellation and
//! the worker's state transitions. Every transition is a conditional UPDATE,
//! so a redelivered message can never finish a job twice.

use chrono::{DateTime, Utc};
use crunch_domain::{EventType, JobEvent, JobKind, JobStatus};
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use uuid::Uuid;

use crate::error::Result;
use crate::events::{insert_event, insert_events, Outboxed};
use crate::models::{JobRow, NewJob};
use crate::pool::with_custom_plans;
use crate::schema::jobs;

/// What a submission did.
#[derive(Debug)]
pub enum Submitted {
    Created(JobRow),
    /// An identical job (same owner, kind, canonical params) exists and was
    /// not failed or cancelled: it is returned instead of a new one.
    Existing(JobRow),
}

/// Inserts a job, or returns the identical one that exists unless `fresh`.
/// An advisory lock on the dedup key makes two identical concurrent
/// submissions yield one job.
pub fn submit(conn: &mut PgConnection, new: NewJob<'_>, fresh: bool) -> Result<Submitted> {
    let req = Submission {
        id: new.id,
        owner_id: new.owner_id,
        kind: new.kind,
        params: new.params.clone(),
        dedup_key: new.dedup_key.to_vec(),
        fresh,
    };
    let mut out = submit_many(conn, std::slice::from_ref(&req))?;
    Ok(out.pop().expect("one answer per submission"))
}

/// One submission of [`submit_many`].
#[derive(Debug, Clone)]
pub struct Submission {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub kind: JobKind,
    pub params: serde_json::Value,
    pub dedup_key: Vec<u8>,
    /// Insert even if an identical job exists.
    pub fresh: bool,
}

/// [`submit`] for many submissions in one transaction (group commit): one
/// statement takes the dedup keys' advisory locks (in key order, so that
/// concurrent batches cannot deadlock), one finds the reusable jobs, one
/// inserts the rest. Answers in the order of `reqs`; an identical submission
/// later in the same batch gets the job created by the earlier one.
pub fn submit_many(conn: &mut PgConnection, reqs: &[Submission]) -> Result<Vec<Submitted>> {
    use std::collections::HashMap;
    if reqs.is_empty() {
        return Ok(Vec::new());
    }
    conn.transaction(|conn| {
        // The key is a SHA-256: its first 8 bytes are a fine lock id.
        let locks: Vec<i64> = reqs
            .iter()
            .map(|r| {
                let mut head = [0u8; 8];
                head.iter_mut().zip(&r.dedup_key).for_each(|(h, k)| *h = *k);
                i64::from_be_bytes(head)
            })
            .collect();
        diesel::sql_query("SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT k FROM unnest($1::int8[]) AS k ORDER BY k) AS s")
            .bind::<diesel::sql_types::Array<BigInt>, _>(locks)
            .execute(conn)?;
        let wanted: Vec<&[u8]> = reqs.iter().filter(|r| !r.fresh).map(|r| r.dedup_key.as_slice()).collect();
        // One probe of jobs_dedup per key (newest first, first reusable row):
        // the plan stays an index scan whatever the statistics say.
        let existing: Vec<JobRow> = if wanted.is_empty() {
            Vec::new()
        } else {
            diesel::sql_query(
                "SELECT j.* FROM unnest($1::bytea[]) AS k(key) CROSS JOIN LATERAL \
                 (SELECT * FROM jobs WHERE dedup_key = k.key AND status IN ('queued', 'running', 'succeeded') \
                  ORDER BY seq DESC LIMIT 1) AS j",
            )
            .bind::<diesel::sql_types::Array<diesel::sql_types::Bytea>, _>(&wanted)
            .load(conn)?
        };
        // What each submission gets: an existing row (index into `existing`),
        // the row it inserts (index into `inserts`), or the row an earlier
        // submission of this batch inserts.
        #[derive(Clone, Copy)]
        enum Plan {
            Existing(usize),
            Create(usize),
            Same(usize),
        }
        // dedup key -> what a later non-fresh submission with that key reuses.
        let mut reuse: HashMap<&[u8], Plan> = existing.iter().enumerate().map(|(i, r)| (r.dedup_key.as_slice(), Plan::Existing(i))).collect();
        let mut inserts = Vec::new();
        let mut plan = Vec::with_capacity(reqs.len());
        for r in reqs {
            match reuse.get(r.dedup_key.as_slice()) {
                Some(&reused) if !r.fresh => plan.push(reused),
                _ => {
                    let i = inserts.len();
                    inserts.push(NewJob { id: r.id, owner_id: r.owner_id, kind: r.kind, params: &r.params, dedup_key: &r.dedup_key });
                    reuse.insert(&r.dedup_key, Plan::Same(i));
                    plan.push(Plan::Create(i));
                }
            }
        }
        let created: HashMap<Uuid, JobRow> = if inserts.is_empty() {
            HashMap::new()
        } else {
            diesel::insert_into(jobs::table)
                .values(&inserts)
                .returning(JobRow::as_returning())
                .get_results(conn)?
                .into_iter()
                .map(|r| (r.id, r))
                .collect()
        };
        let row = |i: usize| created.get(&inserts[i].id).cloned().ok_or(diesel::result::Error::NotFound);
        plan.into_iter()
            .map(|p| match p {
                Plan::Existing(i) => Ok(Submitted::Existing(existing[i].clone())),
                Plan::Create(i) => Ok(Submitted::Created(row(i)?)),
                Plan::Same(i) => Ok(Submitted::Existing(row(i)?)),
            })
            .collect()
    })
}

/// Records that the broker confirmed the job's message.
pub fn mark_published(conn: &mut PgConnection, id: Uuid) -> Result<()> {
    mark_published_many(conn, &[id])
}

/// Records many confirmed publications in one statement. Only queued rows
/// need it (the reconciler republishes queued rows never confirmed): a job a
/// worker already took is not written again.
///
/// A row locked by another transaction is skipped, not waited for: that is a
/// worker ending the job, so the row will not be queued any more (and if
/// that transaction fails, the reconciler republishes the job). Waiting made
/// these marks and the workers' batch updates lock rows in different orders,
/// and under load they deadlocked, each stalling both for a second
/// (`deadlock_timeout`) before one failed.
///
/// One statement, not prepared (so planned for its ids each time, see
/// [`with_custom_plans`]) and outside any transaction: at 2,000
/// submissions/s the gateway flushes these marks about 60 times a second.
pub fn mark_published_many(conn: &mut PgConnection, ids: &[Uuid]) -> Result<()> {
    diesel::sql_query(format!("UPDATE jobs SET published_at = now() WHERE id IN ({QUEUED_AND_FREE})"))
        .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(ids)
        .execute(conn)?;
    Ok(())
}

/// The rows among the ids `$1` that are still queued and that no other
/// transaction holds (a worker ending them), locked: what the gateway's
/// marks and the reconciler may write without waiting on a worker.
const QUEUED_AND_FREE: &str = "SELECT id FROM jobs WHERE id = ANY($1) AND status = 'queued' FOR NO KEY UPDATE SKIP LOCKED";

/// Removes a job whose message could not be published (the submission failed
/// as a whole: nothing half-written stays behind). Only a never-published,
/// still-queued row is removed.
pub fn discard_unpublished(conn: &mut PgConnection, id: Uuid) -> Result<bool> {
    let n = diesel::delete(
        jobs::table.find(id).filter(jobs::published_at.is_null()).filter(jobs::status.eq(JobStatus::Queued)),
    )
    .execute(conn)?;
    Ok(n == 1)
}

pub fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<JobRow>> {
    Ok(jobs::table.find(id).select(JobRow::as_select()).first(conn).optional()?)
}

/// A job of this owner (another owner's job is invisible: `None`).
pub fn get_owned(conn: &mut PgConnection, id: Uuid, owner: Uuid) -> Result<Option<JobRow>> {
    Ok(jobs::table
        .find(id)
        .filter(jobs::owner_id.eq(owner))
        .select(JobRow::as_select())
        .first(conn)
        .optional()?)
}

#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub kind: Option<JobKind>,
    pub status: Option<JobStatus>,
    /// Only jobs older than this cursor (a `seq`).
    pub before: Option<i64>,
    pub limit: i64,
}

/// The owner's jobs, newest first; fetches `limit + 1` rows so the caller
/// knows whether there is a next page.
pub fn list(conn: &mut PgConnection, owner: Uuid, f: &ListFilter) -> Result<Vec<JobRow>> {
    // Monitors' checks are read through their monitor.
    let mut q = jobs::table.filter(jobs::owner_id.eq(owner)).filter(jobs::parent_id.is_null()).filter(jobs::monitor_id.is_null()).into_boxed();
    if let Some(kind) = f.kind {
        q = q.filter(jobs::kind.eq(kind));
    }
    if let Some(status) = f.status {
        // A literal, not a parameter, so that the planner can prove the
        // partial status index (which leaves out `succeeded`) applies.
        q = q.filter(diesel::dsl::sql::<diesel::sql_types::Bool>(&format!("jobs.status = '{}'", status.as_str())));
    }
    if let Some(before) = f.before {
        q = q.filter(jobs::seq.lt(before));
    }
    Ok(q.order(jobs::seq.desc()).limit(f.limit + 1).select(JobRow::as_select()).load(conn)?)
}

fn event_for(row: &JobRow, event: EventType, data: Option<serde_json::Value>) -> JobEvent {
    JobEvent::new(event, row.id, row.kind, row.owner_id, row.progress)
        .with_data(data)
        // A job ends once: its seq tells its terminal event from any other.
        .with_event_id(event.is_terminal().then_some(row.seq))
        .at(row.finished_at.unwrap_or_else(Utc::now))
}

/// The terminal event of an ended top-level job (shards have none), as
/// written to the outbox or rebuilt from the row: the same `event_id`.
pub fn terminal_event(row: &JobRow) -> Option<JobEvent> {
    let status = row.status;
    if !status.is_terminal() || row.parent_id.is_some() {
        return None;
    }
    let data = if status == JobStatus::Succeeded { row.result.clone() } else { row.error.clone() };
    Some(event_for(row, EventType::for_status(status), data))
}

/// The `started` event of a run (its attempt number in `data`).
pub fn started_event(row: &JobRow) -> JobEvent {
    JobEvent::new(EventType::Started, row.id, row.kind, row.owner_id, 0.0)
        .with_data(Some(serde_json::json!({"attempt": row.attempts})))
        .at(row.started_at.unwrap_or_else(Utc::now))
}

/// Fails the jobs among `ids` that are in one of `from` states, with `error`,
/// writing their terminal events (shards excepted) to the outbox.
fn fail_jobs(conn: &mut PgConnection, ids: &[Uuid], from: &[JobStatus], error: serde_json::Value) -> Result<Vec<JobRow>> {
    let rows: Vec<JobRow> = diesel::update(jobs::table.filter(jobs::id.eq_any(ids)).filter(jobs::status.eq_any(from)))
        .set((
            jobs::status.eq(JobStatus::Failed),
            jobs::error.eq(Some(error)),
            jobs::finished_at.eq(diesel::dsl::now),
            jobs::updated_at.eq(diesel::dsl::now),
        ))
        .returning(JobRow::as_returning())
        .get_results(conn)?;
    for row in rows.iter().filter(|r| r.parent_id.is_none()) {
        insert_event(conn, &event_for(row, EventType::Failed, row.error.clone()))?;
    }
    Ok(rows)
}

/// Cancels the unfinished shards of a parent (their workers see it at their next poll).
fn cancel_shards(conn: &mut PgConnection, parent: Uuid) -> Result<()> {
    diesel::update(jobs::table.filter(jobs::parent_id.eq(parent)).filter(jobs::status.eq_any([JobStatus::Queued, JobStatus::Running])))
        .set((jobs::status.eq(JobStatus::Cancelled), jobs::finished_at.eq(diesel::dsl::now), jobs::updated_at.eq(diesel::dsl::now)))
        .execute(conn)?;
    Ok(())
}

#[derive(Debug)]
pub enum Cancelled {
    /// Now cancelled; the terminal event is in the outbox.
    Done(JobRow),
    /// It had already ended; nothing changed.
    AlreadyFinished(JobRow),
    NotFound,
}

/// Cancels a queued or running job of this owner.
pub fn cancel(conn: &mut PgConnection, id: Uuid, owner: Uuid) -> Result<Cancelled> {
    conn.transaction(|conn| {
        let updated = diesel::update(
            jobs::table
                .find(id)
                .filter(jobs::owner_id.eq(owner))
                .filter(jobs::status.eq_any([JobStatus::Queued, JobStatus::Running])),
        )
        .set((
            jobs::status.eq(JobStatus::Cancelled),
            jobs::finished_at.eq(diesel::dsl::now),
            jobs::updated_at.eq(diesel::dsl::now),
            jobs::error.eq(Some(crunch_domain::JobError::new("cancelled", "cancelled by its owner").to_value())),
        ))
        .returning(JobRow::as_returning())
        .get_result(conn)
        .optional()?;
        match updated {
            Some(row) => {
                insert_event(conn, &event_for(&row, EventType::Cancelled, row.error.clone()))?;
                cancel_shards(conn, row.id)?;
                Ok(Cancelled::Done(row))
            }
            None => Ok(match get_owned(conn, id, owner)? {
                Some(row) => Cancelled::AlreadyFinished(row),
                None => Cancelled::NotFound,
            }),
        }
    })
}

#[derive(Debug)]
pub enum Started {
    /// Marked running (attempts incremented): run it.
    Run(JobRow),
    /// It already ended (finished, failed or cancelled): ack and skip.
    Ended(JobRow),
    Missing,
}

/// The worker takes a job: `queued|running -> running`. A `running` row is
/// taken again because its message was redelivered (the previous worker died).
pub fn start(conn: &mut PgConnection, id: Uuid) -> Result<Started> {
    Ok(start_many(conn, &[id])?.pop().unwrap_or(Started::Missing))
}

/// [`start`] for many jobs: one UPDATE, and one SELECT for those not taken.
/// Answers in the order of `ids`; an id repeated in `ids` (a message
/// delivered twice) runs once, its repeats are answered `Ended`.
pub fn start_many(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<Started>> {
    with_custom_plans(conn, |conn| start_in(conn, ids))
}

fn start_in(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<Started>> {
    let taken: Vec<JobRow> = diesel::update(jobs::table.filter(jobs::id.eq_any(ids)).filter(jobs::status.eq_any([JobStatus::Queued, JobStatus::Running])))
        .set((
            jobs::status.eq(JobStatus::Running),
            jobs::attempts.eq(jobs::attempts + 1),
            jobs::started_at.eq(diesel::dsl::now),
            jobs::updated_at.eq(diesel::dsl::now),
        ))
        .returning(JobRow::as_returning())
        .get_results(conn)?;
    Ok(in_order(conn, ids, taken)?
        .into_iter()
        .map(|a| match a {
            InOrder::Changed(row) => Started::Run(row),
            InOrder::Unchanged(row) => Started::Ended(row),
            InOrder::Missing => Started::Missing,
        })
        .collect())
}

/// One answer of a batch statement, per id asked.
enum InOrder {
    /// Changed by the statement (the first time its id was asked).
    Changed(JobRow),
    /// Not changed (or a repeat of an id): the row as it is now.
    Unchanged(JobRow),
    Missing,
}

/// Answers a batch statement that changed the rows `changed` among `ids`, in
/// the order of `ids`, reading the rows it did not change in one SELECT. An
/// id asked twice is `Changed` once, then `Unchanged`.
fn in_order(conn: &mut PgConnection, ids: &[Uuid], changed: Vec<JobRow>) -> Result<Vec<InOrder>> {
    use std::collections::{HashMap, HashSet};
    let mut changed: HashMap<Uuid, JobRow> = changed.into_iter().map(|r| (r.id, r)).collect();
    let others: Vec<Uuid> = ids.iter().filter(|id| !changed.contains_key(id)).copied().collect();
    // Rows not changed, and the changed rows of repeated ids: answered as
    // `Unchanged` copies. Every other changed row is moved, not cloned.
    let mut now: HashMap<Uuid, JobRow> = if others.is_empty() {
        HashMap::new()
    } else {
        jobs::table.filter(jobs::id.eq_any(&others)).select(JobRow::as_select()).load(conn)?.into_iter().map(|r| (r.id, r)).collect()
    };
    let mut seen = HashSet::with_capacity(ids.len());
    let repeated: HashSet<Uuid> = ids.iter().filter(|id| !seen.insert(**id)).copied().collect();
    Ok(ids
        .iter()
        .map(|id| match changed.remove(id) {
            Some(row) => {
                if repeated.contains(id) {
                    now.insert(*id, row.clone());
                }
                InOrder::Changed(row)
            }
            None => now.get(id).map_or(InOrder::Missing, |row| InOrder::Unchanged(row.clone())),
        })
        .collect())
}

/// A finished job and the terminal event written to its outbox (none for a
/// shard), for the caller to publish at once.
pub type Finished = (JobRow, Option<Outboxed>);

/// How a run ended: `Ok(result)` or `Err(error)`.
pub type Outcome = std::result::Result<serde_json::Value, serde_json::Value>;

/// Ends a running job as succeeded (with `result`) or failed (with `error`),
/// writing its terminal event to the outbox in the same transaction. `None`
/// when the job was no longer running (cancelled meanwhile, or another
/// delivery finished it first): then nothing is written.
pub fn finish(conn: &mut PgConnection, id: Uuid, outcome: Outcome) -> Result<Option<Finished>> {
    Ok(finish_many(conn, &[(id, outcome)])?.pop().flatten())
}

/// [`finish`] for many jobs in one transaction: one UPDATE for all rows and
/// one INSERT for all their terminal events. Answers in the order of `items`
/// (a job repeated in `items` is finished once).
pub fn finish_many(conn: &mut PgConnection, items: &[(Uuid, Outcome)]) -> Result<Vec<Option<Finished>>> {
    use std::collections::HashMap;
    if items.is_empty() {
        return Ok(Vec::new());
    }
    conn.transaction(|conn| {
        let rows = finish_rows(conn, items, JobStatus::Running)?;
        let events: Vec<JobEvent> = rows.iter().filter_map(terminal_event).collect();
        let outbox_ids: HashMap<Uuid, i64> = insert_events(conn, &events)?.into_iter().collect();
        let mut events: HashMap<Uuid, Outboxed> =
            events.into_iter().filter_map(|event| Some((event.job_id, Outboxed { id: *outbox_ids.get(&event.job_id)?, event }))).collect();
        let mut done: HashMap<Uuid, Finished> = rows
            .into_iter()
            .map(|row| {
                let ev = events.remove(&row.id);
                (row.id, (row, ev))
            })
            .collect();
        Ok(items.iter().map(|(id, _)| done.remove(id)).collect())
    })
}

/// Sets the outcome of the jobs among `items` that are in state `from`, in
/// one statement (not prepared: planned each time anyway). A job leaving
/// `queued` counts its run in `attempts` and is stamped `started_at` here.
fn finish_rows(conn: &mut PgConnection, items: &[(Uuid, Outcome)], from: JobStatus) -> Result<Vec<JobRow>> {
    let ids: Vec<Uuid> = items.iter().map(|(id, _)| *id).collect();
    let oks: Vec<bool> = items.iter().map(|(_, o)| o.is_ok()).collect();
    let payloads: Vec<&serde_json::Value> = items.iter().map(|(_, o)| o.as_ref().unwrap_or_else(|e| e)).collect();
    Ok(diesel::sql_query(
        "UPDATE jobs AS j SET \
            status = CASE WHEN u.ok THEN 'succeeded' ELSE 'failed' END, \
            result = CASE WHEN u.ok THEN u.payload ELSE j.result END, \
            error = CASE WHEN u.ok THEN j.error ELSE u.payload END, \
            progress = CASE WHEN u.ok THEN 1.0 ELSE j.progress END, \
            attempts = CASE WHEN j.status = 'queued' THEN j.attempts + 1 ELSE j.attempts END, \
            started_at = coalesce(j.started_at, now()), \
            finished_at = now(), updated_at = now() \
         FROM (SELECT DISTINCT ON (id) id, ok, payload FROM unnest($1::uuid[], $2::bool[], $3::jsonb[]) AS t(id, ok, payload)) AS u \
         WHERE j.id = u.id AND j.status = $4 \
         RETURNING j.*",
    )
    .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(&ids)
    .bind::<diesel::sql_types::Array<diesel::sql_types::Bool>, _>(&oks)
    .bind::<diesel::sql_types::Array<diesel::sql_types::Jsonb>, _>(&payloads)
    .bind::<diesel::sql_types::Text, _>(from.as_str())
    .load(conn)?)
}

/// What [`finish_queued`] did with one job.
#[derive(Debug)]
pub enum QuickEnd {
    /// Ended here, straight from `queued`.
    Finished(JobRow),
    /// Not queued (taken by another run, or ended, or a repeat in the
    /// batch): the row as it is now.
    NotQueued(JobRow),
    Missing,
}

/// Ends quick jobs straight from `queued` with one UPDATE: no `running`
/// write before the run, which is counted in `attempts` here. No outbox
/// row either: the caller acks a job's message only once its terminal event
/// is published, and a redelivered message of an ended job republishes it
/// ([`terminal_event`]). Answers in the order of `items`.
pub fn finish_queued(conn: &mut PgConnection, items: &[(Uuid, Outcome)]) -> Result<Vec<QuickEnd>> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let done = finish_rows(conn, items, JobStatus::Queued)?;
    let ids: Vec<Uuid> = items.iter().map(|(id, _)| *id).collect();
    Ok(in_order(conn, &ids, done)?
        .into_iter()
        .map(|a| match a {
            InOrder::Changed(row) => QuickEnd::Finished(row),
            InOrder::Unchanged(row) => QuickEnd::NotQueued(row),
            InOrder::Missing => QuickEnd::Missing,
        })
        .collect())
}

/// Fails a job that can never run (malformed or over-limit message) from any
/// non-terminal state.
pub fn fail_unrunnable(conn: &mut PgConnection, id: Uuid, error: serde_json::Value) -> Result<Option<JobRow>> {
    conn.transaction(|conn| Ok(fail_jobs(conn, &[id], &[JobStatus::Queued, JobStatus::Running], error)?.pop()))
}

/// Records progress of a running job, and what it is doing now when the
/// kernel says (`stage`; the last one said stays otherwise).
pub fn set_progress(conn: &mut PgConnection, id: Uuid, progress: f64, stage: Option<&str>) -> Result<()> {
    let target = jobs::table.find(id).filter(jobs::status.eq(JobStatus::Running));
    let progress = jobs::progress.eq(progress.clamp(0.0, 1.0));
    match stage {
        Some(s) => diesel::update(target).set((progress, jobs::stage.eq(s), jobs::updated_at.eq(diesel::dsl::now))).execute(conn)?,
        None => diesel::update(target).set((progress, jobs::updated_at.eq(diesel::dsl::now))).execute(conn)?,
    };
    Ok(())
}

/// The current status, for the worker's cancel watch.
pub fn status(conn: &mut PgConnection, id: Uuid) -> Result<Option<JobStatus>> {
    let s: Option<String> = jobs::table.find(id).select(jobs::status).first(conn).optional()?;
    Ok(s.and_then(|s| s.parse().ok()))
}

/// Jobs the reconciler republishes, and how far its scan got. Two range
/// scans of the small index of unfinished rows (`jobs_unfinished`), never the
/// whole table:
/// - never confirmed: unfinished rows last touched from `after` (the
///   caller's watermark) to `unpublished_before`, oldest first; those still
///   queued with no `published_at` are taken, and the watermark moves to the
///   last row looked at (at most `20 * limit` a pass);
/// - waited too long: queued rows untouched since `stuck_before` (their
///   message may have been lost). This also catches a row the first scan
///   passed while it was invisible (a transaction open longer than the grace).
///
/// Taken rows are touched, so the next pass waits another period for them.
/// Only one reconciler at a time gets rows (transaction-scoped advisory lock);
/// the others keep their watermark.
pub fn reconcile_candidates(
    conn: &mut PgConnection,
    after: DateTime<Utc>,
    unpublished_before: DateTime<Utc>,
    stuck_before: DateTime<Utc>,
    limit: i64,
) -> Result<(Vec<JobRow>, DateTime<Utc>)> {
    #[derive(QueryableByName)]
    struct Seen {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        id: Uuid,
        #[diesel(sql_type = diesel::sql_types::Timestamptz)]
        updated_at: DateTime<Utc>,
        #[diesel(sql_type = diesel::sql_types::Bool)]
        unpublished: bool,
    }
    #[derive(QueryableByName)]
    struct Locked {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        locked: bool,
    }
    use diesel::sql_types::{Timestamptz, Uuid as SqlUuid};
    conn.transaction(|conn| {
        let got: Locked = diesel::sql_query("SELECT pg_try_advisory_xact_lock($1) AS locked")
            .bind::<BigInt, _>(0x6372_756e_6368_0002_i64)
            .get_result(conn)?;
        if !got.locked {
            return Ok((Vec::new(), after));
        }
        // `finished_at IS NULL`: the predicate of the partial index
        // jobs_unfinished (the statuses are checked as well).
        let scan = 20 * limit;
        let seen: Vec<Seen> = diesel::sql_query(
            "SELECT id, updated_at, (status = 'queued' AND published_at IS NULL) AS unpublished FROM jobs \
             WHERE finished_at IS NULL AND status IN ('queued', 'running') AND updated_at >= $1 AND updated_at < $2 \
             ORDER BY updated_at LIMIT $3",
        )
        .bind::<Timestamptz, _>(after)
        .bind::<Timestamptz, _>(unpublished_before)
        .bind::<BigInt, _>(scan)
        .load(conn)?;
        let mut ids: Vec<Uuid> = Vec::new();
        let mut watermark = None;
        for r in seen.iter().filter(|r| r.unpublished) {
            if ids.len() as i64 == limit {
                // More than a pass takes: the next one resumes here.
                watermark = Some(r.updated_at);
                break;
            }
            ids.push(r.id);
        }
        // Else the next pass starts at the last row looked at (`>=`: rows of
        // the same instant may lie beyond the scan), or where this one ended.
        let watermark = watermark.unwrap_or(match seen.last() {
            Some(last) if (seen.len() as i64) < scan => last.updated_at.max(after),
            // A full scan of one instant would never move on: step past it.
            Some(last) if last.updated_at == after => after + chrono::Duration::microseconds(1),
            Some(last) => last.updated_at,
            None => after,
        });
        let stuck: Vec<Seen> = diesel::sql_query(
            "SELECT id, updated_at, true AS unpublished FROM jobs \
             WHERE finished_at IS NULL AND updated_at < $1 AND status = 'queued' \
             ORDER BY updated_at LIMIT $2",
        )
        .bind::<Timestamptz, _>(stuck_before)
        .bind::<BigInt, _>(limit)
        .load(conn)?;
        ids.extend(stuck.into_iter().map(|r| r.id));
        ids.sort_unstable();
        ids.dedup();
        // Still queued, and not being ended by a worker right now (locked:
        // skipped, as by `mark_published_many`, rather than waited for).
        let rows: Vec<JobRow> = diesel::sql_query(format!("UPDATE jobs SET updated_at = now() WHERE id IN ({QUEUED_AND_FREE}) RETURNING *"))
            .bind::<diesel::sql_types::Array<SqlUuid>, _>(&ids)
            .load(conn)?;
        Ok((rows, watermark))
    })
}

/// The key's jobs that are queued or running (its share of the queues).
pub fn unfinished_count(conn: &mut PgConnection, owner: Uuid) -> Result<i64> {
    Ok(jobs::table
        .filter(jobs::owner_id.eq(owner))
        .filter(jobs::status.eq_any([JobStatus::Queued, JobStatus::Running]))
        .count()
        .get_result(conn)?)
}

/// One minute of one kind's jobs that ended: how many succeeded and how many
/// did not (failed or cancelled), and the median and 99th percentile of the
/// time from submission to the end, in ms.
#[derive(Debug, Clone, QueryableByName)]
pub struct MinuteOfJobs {
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub kind: String,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    pub minute: DateTime<Utc>,
    #[diesel(sql_type = BigInt)]
    pub succeeded: i64,
    #[diesel(sql_type = BigInt)]
    pub failed: i64,
    #[diesel(sql_type = diesel::sql_types::Double)]
    pub p50_ms: f64,
    #[diesel(sql_type = diesel::sql_types::Double)]
    pub p99_ms: f64,
}

/// The key's jobs (shards not counted) that ended since `since`, by kind and
/// minute, oldest first.
pub fn minutes_of_jobs(conn: &mut PgConnection, owner: Uuid, since: DateTime<Utc>) -> Result<Vec<MinuteOfJobs>> {
    Ok(diesel::sql_query(
        "SELECT kind, date_trunc('minute', finished_at) AS minute,
                count(*) FILTER (WHERE status = 'succeeded') AS succeeded,
                count(*) FILTER (WHERE status <> 'succeeded') AS failed,
                percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - created_at)) * 1000 AS p50_ms,
                percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - created_at)) * 1000 AS p99_ms
           FROM jobs
          WHERE owner_id = $1 AND finished_at >= $2 AND finished_at IS NOT NULL AND parent_id IS NULL
          GROUP BY 1, 2
          ORDER BY 2, 1",
    )
    .bind::<diesel::sql_types::Uuid, _>(owner)
    .bind::<diesel::sql_types::Timestamptz, _>(since)
    .load(conn)?)
}

/// Counts of jobs by kind and status (for `/metrics`).
pub fn counts(conn: &mut PgConnection) -> Result<Vec<(String, String, i64)>> {
    Ok(jobs::table
        .group_by((jobs::kind, jobs::status))
        .select((jobs::kind, jobs::status, diesel::dsl::count_star()))
        .load(conn)?)
}

/// Fails running jobs whose attempt started before `started_before`: no
/// attempt can run that long (the time budget ends it), so their worker died
/// and their message was dead-lettered or lost. Returns the failed rows.
/// `started_before` applies to every kind but `genes`, which has a time
/// budget of its own and so its own cutoff, `genes_started_before`.
pub fn fail_abandoned(conn: &mut PgConnection, started_before: DateTime<Utc>, genes_started_before: DateTime<Utc>, limit: i64) -> Result<Vec<JobRow>> {
    conn.transaction(|conn| {
        // A parent waiting for its shards is running without a worker: not abandoned.
        #[derive(QueryableByName)]
        struct Id {
            #[diesel(sql_type = diesel::sql_types::Uuid)]
            id: Uuid,
        }
        let ids: Vec<Uuid> = diesel::sql_query(
            "SELECT j.id FROM jobs j WHERE j.status = 'running' \
             AND j.started_at < CASE WHEN j.kind = 'genes' THEN $2 ELSE $1 END \
             AND NOT EXISTS (SELECT 1 FROM jobs c WHERE c.parent_id = j.id) LIMIT $3",
        )
        .bind::<diesel::sql_types::Timestamptz, _>(started_before)
        .bind::<diesel::sql_types::Timestamptz, _>(genes_started_before)
        .bind::<BigInt, _>(limit)
        .load::<Id>(conn)?
        .into_iter()
        .map(|r| r.id)
        .collect();
        let error = serde_json::json!({
            "code": "abandoned",
            "message": "the job's worker stopped responding and its message can no longer be delivered"
        });
        fail_jobs(conn, &ids, &[JobStatus::Running], error)
    })
}

/// The shards of a parent job, in order.
pub fn shards_of(conn: &mut PgConnection, parent: Uuid) -> Result<Vec<JobRow>> {
    Ok(jobs::table
        .filter(jobs::parent_id.eq(parent))
        .order(jobs::shard_index.asc())
        .select(JobRow::as_select())
        .load(conn)?)
}

/// Creates the shards of a running parent unless it has them already (a
/// redelivered parent message), and returns them in order.
pub fn create_shards(conn: &mut PgConnection, parent: Uuid, shards: &[crate::models::NewShard]) -> Result<Vec<JobRow>> {
    conn.transaction(|conn| {
        jobs::table.find(parent).select(jobs::id).for_update().first::<Uuid>(conn)?;
        if shards_of(conn, parent)?.is_empty() {
            diesel::insert_into(jobs::table).values(shards).execute(conn)?;
        }
        shards_of(conn, parent)
    })
}

/// What settling a finished shard did to its parent.
#[derive(Debug)]
pub enum ParentUpdate {
    /// Nothing (the parent had already ended, e.g. cancelled).
    Nothing,
    /// Some shards still run; the parent's progress is now this.
    Progress(JobRow),
    /// The failed shard was put back in the queue: publish it again.
    RetryShard(JobRow),
    /// The parent ended (succeeded with the aggregate, or failed); its terminal
    /// event is in the outbox.
    Finished(JobRow),
}

/// How many times a failed shard runs before its parent fails.
pub const SHARD_MAX_ATTEMPTS: i32 = 3;

/// Settles the parent of a shard that has ended: aggregates when all shards
/// succeeded, retries a failed shard alone (up to [`SHARD_MAX_ATTEMPTS`]),
/// fails the parent after that, else records progress. Idempotent.
pub fn settle_parent(
    conn: &mut PgConnection,
    parent: Uuid,
    aggregate: impl Fn(&JobRow, &[JobRow]) -> serde_json::Value,
) -> Result<ParentUpdate> {
    conn.transaction(|conn| {
        let prow: JobRow = jobs::table.find(parent).select(JobRow::as_select()).for_update().first(conn)?;
        if prow.status != JobStatus::Running {
            return Ok(ParentUpdate::Nothing);
        }
        let shards = shards_of(conn, parent)?;
        if let Some(failed) = shards.iter().find(|s| s.status == JobStatus::Failed) {
            if failed.attempts < SHARD_MAX_ATTEMPTS {
                let row = diesel::update(jobs::table.find(failed.id))
                    .set((
                        jobs::status.eq(JobStatus::Queued),
                        jobs::error.eq(None::<serde_json::Value>),
                        jobs::finished_at.eq(None::<DateTime<Utc>>),
                        jobs::published_at.eq(None::<DateTime<Utc>>),
                        jobs::updated_at.eq(diesel::dsl::now),
                    ))
                    .returning(JobRow::as_returning())
                    .get_result(conn)?;
                return Ok(ParentUpdate::RetryShard(row));
            }
            let error = serde_json::json!({
                "code": "shard_failed",
                "message": format!("shard {} failed {} times", failed.shard_index.unwrap_or(0), failed.attempts),
                "details": {"shard_index": failed.shard_index, "error": failed.error},
            });
            cancel_shards(conn, parent)?;
            return Ok(match fail_jobs(conn, &[parent], &[JobStatus::Running], error)?.pop() {
                Some(row) => ParentUpdate::Finished(row),
                None => ParentUpdate::Nothing,
            });
        }
        let done = shards.iter().filter(|s| s.status == JobStatus::Succeeded).count();
        if done == shards.len() && !shards.is_empty() {
            let result = aggregate(&prow, &shards);
            let row: JobRow = diesel::update(jobs::table.find(parent))
                .set((
                    jobs::status.eq(JobStatus::Succeeded),
                    jobs::result.eq(Some(result)),
                    jobs::progress.eq(1.0),
                    jobs::finished_at.eq(diesel::dsl::now),
                    jobs::updated_at.eq(diesel::dsl::now),
                ))
                .returning(JobRow::as_returning())
                .get_result(conn)?;
            insert_event(conn, &event_for(&row, EventType::Succeeded, row.result.clone()))?;
            return Ok(ParentUpdate::Finished(row));
        }
        let progress = done as f64 / shards.len().max(1) as f64;
        let row = diesel::update(jobs::table.find(parent))
            .set((jobs::progress.eq(progress), jobs::updated_at.eq(diesel::dsl::now)))
            .returning(JobRow::as_returning())
            .get_result(conn)?;
        Ok(ParentUpdate::Progress(row))
    })
}

/// A page (newest first) of the owner's top-level jobs of one kind, optionally
/// only those whose `params->>key` equals a value, with the total count.
pub fn page_of_kind(
    conn: &mut PgConnection,
    owner: Uuid,
    kind: JobKind,
    param_eq: Option<(&str, &str)>,
    offset: i64,
    limit: i64,
) -> Result<(Vec<JobRow>, i64)> {
    let filtered = || {
        let mut q = jobs::table
            .filter(jobs::owner_id.eq(owner))
            .filter(jobs::kind.eq(kind))
            .filter(jobs::parent_id.is_null())
            .filter(jobs::monitor_id.is_null())
            .into_boxed();
        if let Some((key, value)) = param_eq {
            q = q.filter(jobs::params.retrieve_as_text(key.to_owned()).eq(value.to_owned()));
        }
        q
    };
    let total: i64 = filtered().count().get_result(conn)?;
    let rows = filtered().order(jobs::seq.desc()).offset(offset).limit(limit).select(JobRow::as_select()).load(conn)?;
    Ok((rows, total))
}
