//! The batched job transitions (group-committed submissions, jobs started
//! and finished a batch at a time, quick jobs ended straight from `queued`)
//! against a real PostgreSQL: the same answers as one at a time, in the
//! order asked, with repeats handled.

use crunch_domain::{JobKind, JobStatus};
use crunch_store::jobs::{finish_many, finish_queued, start_many, submit_many, terminal_event, QuickEnd, Started, Submission, Submitted};
use diesel::RunQueryDsl;
use serde_json::json;
use uuid::Uuid;

fn sub(owner: Uuid, n: u64, fresh: bool) -> Submission {
    Submission {
        id: Uuid::new_v4(),
        owner_id: owner,
        kind: JobKind::Factorize,
        params: json!({"n": n.to_string()}),
        dedup_key: format!("key-{n}").into_bytes(),
        fresh,
    }
}

/// A fresh store with queued jobs for the numbers `ns`: their owner and ids.
fn queued(ns: std::ops::Range<u64>) -> anyhow::Result<(diesel::PgConnection, Uuid, Vec<Uuid>)> {
    let (mut conn, owner) = crunch_e2e::store_fixture()?;
    let subs: Vec<Submission> = ns.map(|n| sub(owner, n, false)).collect();
    submit_many(&mut conn, &subs)?;
    Ok((conn, owner, subs.iter().map(|s| s.id).collect()))
}

fn id_of(s: &Submitted) -> (bool, Uuid) {
    match s {
        Submitted::Created(r) => (true, r.id),
        Submitted::Existing(r) => (false, r.id),
    }
}

#[test]
fn a_submission_batch_reuses_identical_jobs_within_and_across_batches() -> anyhow::Result<()> {
    let (mut conn, owner) = crunch_e2e::store_fixture()?;
    let first = submit_many(&mut conn, &[sub(owner, 10, false)])?;
    let (created, ten) = id_of(&first[0]);
    assert!(created);
    let batch = [sub(owner, 10, false), sub(owner, 11, false), sub(owner, 11, false), sub(owner, 11, true), sub(owner, 12, false)];
    let out: Vec<(bool, Uuid)> = submit_many(&mut conn, &batch)?.iter().map(id_of).collect();
    // An earlier identical job is reused; the first of two identical
    // submissions creates the job and the second gets it; `fresh` creates another.
    assert_eq!(out[0], (false, ten));
    assert_eq!(out[1], (true, batch[1].id));
    assert_eq!(out[2], (false, batch[1].id));
    assert_eq!(out[3], (true, batch[3].id));
    assert_eq!(out[4], (true, batch[4].id));
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let rows: N = diesel::sql_query("SELECT count(*) AS n FROM jobs").get_result(&mut conn)?;
    assert_eq!(rows.n, 4);
    Ok(())
}

#[test]
fn jobs_start_and_finish_a_batch_at_a_time() -> anyhow::Result<()> {
    let (mut conn, owner, ids) = queued(20..24)?;
    let missing = Uuid::new_v4();
    // A repeated id (a message delivered twice) runs once.
    let started = start_many(&mut conn, &[ids[0], ids[1], ids[0], missing, ids[2], ids[3]])?;
    assert!(matches!(&started[0], Started::Run(r) if r.id == ids[0] && r.attempts == 1 && r.status == JobStatus::Running));
    assert!(matches!(&started[1], Started::Run(r) if r.id == ids[1]));
    assert!(matches!(&started[2], Started::Ended(r) if r.id == ids[0]));
    assert!(matches!(&started[3], Started::Missing));
    // Cancelled meanwhile: not finished, no event.
    crunch_store::jobs::cancel(&mut conn, ids[3], owner)?;
    let done = finish_many(
        &mut conn,
        &[
            (ids[0], Ok(json!({"factors": [2, 2, 5]}))),
            (ids[1], Err(json!({"code": "boom", "message": "x"}))),
            (ids[3], Ok(json!({}))),
            (ids[2], Ok(json!({"factors": [2, 11]}))),
            (ids[0], Ok(json!({"factors": [2, 2, 5]}))),
        ],
    )?;
    let (row, ev) = done[0].as_ref().expect("finished");
    assert_eq!((row.status.as_str(), row.progress), ("succeeded", 1.0));
    assert_eq!(row.result, Some(json!({"factors": [2, 2, 5]})));
    let ev = ev.as_ref().expect("an outbox event");
    assert_eq!((ev.event.job_id, ev.event.data.clone()), (ids[0], row.result.clone()));
    // A job ends once: its seq is its terminal event's id, rebuilt alike.
    assert_eq!(ev.event.event_id, Some(row.seq));
    assert_eq!(terminal_event(row).as_ref(), Some(&ev.event));
    let (row, ev) = done[1].as_ref().expect("finished");
    assert_eq!((row.status.as_str(), row.result.clone()), ("failed", None));
    assert_eq!(ev.as_ref().and_then(|e| e.event.data.clone()), Some(json!({"code": "boom", "message": "x"})));
    assert!(done[2].is_none(), "a cancelled job is not finished");
    assert!(done[3].is_some());
    assert!(done[4].is_none(), "a job is finished once");
    // One terminal event per finished job in the outbox, with the ids handed back.
    let unpublished = crunch_store::events::unpublished(&mut conn, None, -60, 100)?;
    let mut got: Vec<(Uuid, i64, Option<i64>)> =
        unpublished.iter().filter(|o| o.event.job_id != ids[3]).map(|o| (o.event.job_id, o.id, o.event.event_id)).collect();
    got.sort();
    let mut want: Vec<(Uuid, i64, Option<i64>)> = done
        .iter()
        .flatten()
        .map(|(r, e)| e.as_ref().map(|e| (r.id, e.id, Some(r.seq))).expect("an outbox event"))
        .collect();
    want.sort();
    assert_eq!(got, want);
    Ok(())
}

#[test]
fn quick_jobs_end_straight_from_queued_without_an_outbox_row() -> anyhow::Result<()> {
    let (mut conn, owner, ids) = queued(30..34)?;
    let missing = Uuid::new_v4();
    // One is taken by a run alone (a redelivered message), one is cancelled.
    assert!(matches!(&start_many(&mut conn, &[ids[1]])?[0], Started::Run(_)));
    crunch_store::jobs::cancel(&mut conn, ids[2], owner)?;
    let ended = finish_queued(
        &mut conn,
        &[
            (ids[0], Ok(json!({"factors": [2, 3, 5]}))),
            (ids[1], Ok(json!({}))),
            (ids[2], Ok(json!({}))),
            (missing, Ok(json!({}))),
            (ids[3], Err(json!({"code": "boom", "message": "x"}))),
            (ids[0], Ok(json!({"factors": [2, 3, 5]}))),
        ],
    )?;
    let QuickEnd::Finished(row) = &ended[0] else { panic!("{:?}", ended[0]) };
    // The run counts as an attempt and has a start time, as if started.
    assert_eq!((row.status.as_str(), row.attempts, row.progress), ("succeeded", 1, 1.0));
    assert!(row.started_at.is_some() && row.started_at <= row.finished_at);
    let ev = terminal_event(row).expect("a terminal event");
    assert_eq!((ev.event_id, ev.data.clone()), (Some(row.seq), row.result.clone()));
    assert!(matches!(&ended[1], QuickEnd::NotQueued(r) if r.status == JobStatus::Running));
    assert!(matches!(&ended[2], QuickEnd::NotQueued(r) if r.status == JobStatus::Cancelled));
    assert!(matches!(&ended[3], QuickEnd::Missing));
    assert!(matches!(&ended[4], QuickEnd::Finished(r) if r.status == JobStatus::Failed && r.error == Some(json!({"code": "boom", "message": "x"}))));
    assert!(matches!(&ended[5], QuickEnd::NotQueued(r) if r.id == ids[0]), "a job is finished once");
    // Only the cancellation wrote to the outbox.
    let outbox = crunch_store::events::unpublished(&mut conn, None, -60, 100)?;
    assert_eq!(outbox.iter().map(|o| o.event.job_id).collect::<Vec<_>>(), vec![ids[2]]);
    Ok(())
}

#[test]
fn the_reconciler_scans_unfinished_rows_from_its_watermark_and_stuck_rows_by_age() -> anyhow::Result<()> {
    use crunch_store::jobs::reconcile_candidates;
    let (mut conn, _, ids) = queued(40..45)?;
    let id = |i: usize| ids[i];
    let set = |conn: &mut diesel::PgConnection, sql: &str, i: usize| -> anyhow::Result<()> {
        diesel::sql_query(sql).bind::<diesel::sql_types::Uuid, _>(id(i)).execute(conn)?;
        Ok(())
    };
    // 0: confirmed; 1: never confirmed; 2: never confirmed but running;
    // 3: never confirmed, within the grace; 4: never confirmed.
    for (i, secs) in [(0, 70), (1, 60), (2, 60), (4, 50)] {
        diesel::sql_query(format!("UPDATE jobs SET updated_at = now() - interval '{secs} s' WHERE id = $1"))
            .bind::<diesel::sql_types::Uuid, _>(id(i))
            .execute(&mut conn)?;
    }
    set(&mut conn, "UPDATE jobs SET published_at = now() WHERE id = $1", 0)?;
    set(&mut conn, "UPDATE jobs SET status = 'running' WHERE id = $1", 2)?;
    let now = chrono::Utc::now();
    let (grace, stuck) = (now - chrono::Duration::seconds(10), now - chrono::Duration::seconds(900));
    let ids = |rows: &[crunch_store::models::JobRow]| {
        let mut v: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        v.sort();
        v
    };
    let sorted = |mut v: Vec<Uuid>| {
        v.sort();
        v
    };
    let (rows, watermark) = reconcile_candidates(&mut conn, chrono::DateTime::UNIX_EPOCH, grace, stuck, 500)?;
    assert_eq!(ids(&rows), sorted(vec![id(1), id(4)]));
    // Taken rows are touched: the next pass leaves them for another grace.
    assert!(rows.iter().all(|r| r.updated_at > grace));
    assert!(watermark > now - chrono::Duration::seconds(55) && watermark < grace, "{watermark}");
    // Rows behind the watermark are not looked at again...
    set(&mut conn, "UPDATE jobs SET published_at = NULL WHERE id = $1", 0)?;
    let (rows, watermark) = reconcile_candidates(&mut conn, watermark, grace, stuck, 500)?;
    assert!(rows.is_empty(), "{rows:?}");
    // ...unless they waited past the stuck limit.
    set(&mut conn, "UPDATE jobs SET updated_at = now() - interval '1000 s' WHERE id = $1", 0)?;
    let (rows, watermark) = reconcile_candidates(&mut conn, watermark, grace, stuck, 500)?;
    assert_eq!(ids(&rows), vec![id(0)]);
    // Once the young row is past the grace, it is taken.
    set(&mut conn, "UPDATE jobs SET updated_at = now() - interval '30 s' WHERE id = $1", 3)?;
    let (rows, _) = reconcile_candidates(&mut conn, watermark, grace, stuck, 500)?;
    assert_eq!(ids(&rows), vec![id(3)]);
    // A pass takes at most `limit`, and the next resumes at the rest.
    for i in [1, 4] {
        set(&mut conn, "UPDATE jobs SET updated_at = now() - interval '40 s', published_at = NULL WHERE id = $1", i)?;
    }
    let (first, watermark) = reconcile_candidates(&mut conn, watermark, grace, stuck, 1)?;
    let (second, _) = reconcile_candidates(&mut conn, watermark, grace, stuck, 1)?;
    assert_eq!(sorted([ids(&first), ids(&second)].concat()), sorted(vec![id(1), id(4)]));
    Ok(())
}

/// A new deployment: the jobs table has not been analysed yet. The batch
/// transitions still find their rows by primary key: none of them scans a
/// partial index that holds every queued job (such a plan read the whole of
/// `jobs_unfinished` once per batch of confirmed submissions).
#[test]
fn batch_transitions_find_rows_by_key_before_the_first_analyze() -> anyhow::Result<()> {
    let (mut conn, _owner, ids) = queued(0..3000)?;
    diesel::sql_query("ALTER TABLE jobs SET (autovacuum_enabled = false)").execute(&mut conn)?;
    for chunk in ids[..1500].chunks(30) {
        crunch_store::jobs::mark_published_many(&mut conn, chunk)?;
    }
    for chunk in ids[1500..2100].chunks(30) {
        start_many(&mut conn, chunk)?;
    }
    crunch_store::jobs::fail_unrunnable(&mut conn, ids[2500], json!({"code": "x", "message": "x"}))?;
    #[derive(diesel::QueryableByName)]
    struct Scans {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        analysed: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        scans: i64,
    }
    // This session's counters reach the shared statistics when it goes idle.
    diesel::sql_query("SELECT pg_stat_force_next_flush()").execute(&mut conn)?;
    let s: Scans = diesel::sql_query(
        "SELECT (SELECT analyze_count + autoanalyze_count FROM pg_stat_user_tables WHERE relname = 'jobs') AS analysed, \
                sum(idx_scan)::int8 AS scans FROM pg_stat_user_indexes \
         WHERE indexrelname IN ('jobs_unfinished', 'jobs_owner_status_seq', 'jobs_running')",
    )
    .get_result(&mut conn)?;
    assert_eq!(s.analysed, 0, "the table was analysed: this test needs it young");
    assert_eq!(s.scans, 0, "a batch transition scanned a partial index of statuses");
    Ok(())
}

/// A worker ending jobs holds their rows until it commits. The gateway's
/// `published_at` marks and the reconciler's republishing skip such rows
/// instead of waiting for them: waiting made them and the workers' batch
/// updates lock rows in different orders, and deadlock.
#[test]
fn published_marks_and_the_reconciler_skip_rows_a_worker_is_ending() -> anyhow::Result<()> {
    use diesel::Connection;
    let (mut conn, _owner, ids) = queued(40..43)?;
    #[derive(diesel::QueryableByName)]
    struct Db {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    let db: Db = diesel::sql_query("SELECT current_database() AS name").get_result(&mut conn)?;
    let url = format!("{}/{}", crunch_e2e::db_server(), db.name);
    // The "worker": holds the row of ids[0] in an open transaction.
    let mut worker = diesel::PgConnection::establish(&url)?;
    diesel::sql_query("BEGIN").execute(&mut worker)?;
    diesel::sql_query(format!("SELECT 1 FROM jobs WHERE id = '{}' FOR NO KEY UPDATE", ids[0])).execute(&mut worker)?;
    // A wait would end in this error rather than hang the test.
    diesel::sql_query("SET statement_timeout = '3s'").execute(&mut conn)?;
    crunch_store::jobs::mark_published_many(&mut conn, &ids[..2])?;
    let epoch = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
    let far = chrono::Utc::now() + chrono::Duration::days(1);
    // Every queued row is a candidate (unpublished and stuck before `far`).
    let (rows, _) = crunch_store::jobs::reconcile_candidates(&mut conn, epoch, far, far, 100)?;
    let touched: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    assert!(!touched.contains(&ids[0]), "the reconciler took a row a worker holds");
    assert!(touched.contains(&ids[2]), "the reconciler skipped a free row: {touched:?}");
    diesel::sql_query("ROLLBACK").execute(&mut worker)?;
    #[derive(diesel::QueryableByName)]
    struct Marked {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        id: Uuid,
    }
    let marked: Vec<Uuid> = diesel::sql_query("SELECT id FROM jobs WHERE published_at IS NOT NULL")
        .load::<Marked>(&mut conn)?
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(marked, vec![ids[1]], "only the free row is marked");
    Ok(())
}

/// A kind the code does not know, written into the database by hand, is an
/// error when the row is read, never a default kind; a stored error that is
/// not a `JobError` is shown under `details`, never dropped.
#[test]
fn unknown_stored_values_are_errors_not_defaults() -> anyhow::Result<()> {
    let (mut conn, _owner, ids) = queued(1..3)?;
    diesel::sql_query("UPDATE jobs SET kind = 'teleport' WHERE id = $1").bind::<diesel::sql_types::Uuid, _>(ids[0]).execute(&mut conn)?;
    let err = crunch_store::jobs::get(&mut conn, ids[0]).expect_err("an unknown kind is an error");
    assert!(err.reason().contains("'kind'"), "{}", err.reason());
    diesel::sql_query("UPDATE jobs SET status = 'failed', finished_at = now(), error = '\"boom\"' WHERE id = $1")
        .bind::<diesel::sql_types::Uuid, _>(ids[1])
        .execute(&mut conn)?;
    let job = crunch_store::jobs::get(&mut conn, ids[1])?.expect("the job").to_job();
    let error = job.error.expect("the error is kept");
    assert_eq!((error.code.as_str(), error.details), ("unreadable_error", Some(json!("boom"))));
    Ok(())
}
