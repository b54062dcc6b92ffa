//! Settling a sharded job's parent, against a real PostgreSQL: progress,
//! retrying a failed shard alone, failing after the last attempt, aggregating.

use crunch_domain::{JobKind, JobStatus};
use crunch_store::jobs::{create_shards, settle_parent, start, ParentUpdate, SHARD_MAX_ATTEMPTS};
use crunch_store::models::{JobRow, NewJob, NewShard};
use diesel::RunQueryDsl;
use diesel::sql_types::{Integer, Text};
use serde_json::json;
use uuid::Uuid;

fn setup(shards: usize) -> anyhow::Result<(diesel::PgConnection, Uuid, Vec<JobRow>)> {
    let (mut conn, owner) = crunch_e2e::store_fixture()?;
    let parent = Uuid::new_v4();
    let params = json!({"from": "0", "to": "99", "mode": "count"});
    crunch_store::jobs::submit(&mut conn, NewJob { id: parent, owner_id: owner, kind: JobKind::Primes, params: &params, dedup_key: b"k" }, false)?;
    start(&mut conn, parent)?;
    let news: Vec<NewShard> = (0..shards)
        .map(|i| NewShard {
            id: Uuid::new_v4(),
            owner_id: owner,
            kind: JobKind::Primes,
            params: json!({"from": (i * 50).to_string(), "to": (i * 50 + 49).to_string(), "mode": "count"}),
            dedup_key: Uuid::new_v4().as_bytes().to_vec(),
            parent_id: parent,
            shard_index: i as i32,
        })
        .collect();
    let rows = create_shards(&mut conn, parent, &news)?;
    // Creating again (a redelivered parent) returns the same shards.
    assert_eq!(create_shards(&mut conn, parent, &news)?.iter().map(|r| r.id).collect::<Vec<_>>(), rows.iter().map(|r| r.id).collect::<Vec<_>>());
    Ok((conn, parent, rows))
}

fn end_shard(conn: &mut diesel::PgConnection, id: Uuid, ok: bool, count: u64) -> anyhow::Result<()> {
    start(conn, id)?;
    let outcome = if ok { Ok(json!({"mode": "count", "count": count})) } else { Err(json!({"code": "boom", "message": "x"})) };
    crunch_store::jobs::finish(conn, id, outcome)?;
    Ok(())
}

fn agg(_: &JobRow, shards: &[JobRow]) -> serde_json::Value {
    json!({"count": shards.iter().map(|s| s.result.as_ref().map_or(0, |r| r["count"].as_u64().unwrap_or(0))).sum::<u64>()})
}

#[test]
fn a_failed_shard_is_retried_alone_then_the_parent_aggregates() -> anyhow::Result<()> {
    let (mut conn, parent, shards) = setup(2)?;
    end_shard(&mut conn, shards[0].id, true, 15)?;
    match settle_parent(&mut conn, parent, agg)? {
        ParentUpdate::Progress(p) => assert_eq!(p.progress, 0.5),
        other => panic!("{other:?}"),
    }
    end_shard(&mut conn, shards[1].id, false, 0)?;
    match settle_parent(&mut conn, parent, agg)? {
        ParentUpdate::RetryShard(s) => {
            assert_eq!(s.id, shards[1].id);
            assert_eq!(s.status, JobStatus::Queued);
            assert!(s.published_at.is_none());
        }
        other => panic!("{other:?}"),
    }
    // The first shard was not touched.
    let first = crunch_store::jobs::get(&mut conn, shards[0].id)?.expect("shard");
    assert_eq!((first.status.as_str(), first.attempts), ("succeeded", 1));
    end_shard(&mut conn, shards[1].id, true, 10)?;
    match settle_parent(&mut conn, parent, agg)? {
        ParentUpdate::Finished(p) => {
            assert_eq!(p.status, JobStatus::Succeeded);
            assert_eq!(p.result, Some(json!({"count": 25})));
        }
        other => panic!("{other:?}"),
    }
    // Settling again changes nothing.
    assert!(matches!(settle_parent(&mut conn, parent, agg)?, ParentUpdate::Nothing));
    Ok(())
}

#[test]
fn a_shard_failing_every_attempt_fails_the_parent_and_cancels_the_rest() -> anyhow::Result<()> {
    let (mut conn, parent, shards) = setup(3)?;
    diesel::sql_query("UPDATE jobs SET attempts = $1 - 1 WHERE id = $2::uuid")
        .bind::<Integer, _>(SHARD_MAX_ATTEMPTS)
        .bind::<Text, _>(shards[2].id.to_string())
        .execute(&mut conn)?;
    end_shard(&mut conn, shards[2].id, false, 0)?;
    match settle_parent(&mut conn, parent, agg)? {
        ParentUpdate::Finished(p) => {
            assert_eq!(p.status, JobStatus::Failed);
            assert_eq!(p.error.as_ref().map(|e| e["code"].clone()), Some(json!("shard_failed")));
        }
        other => panic!("{other:?}"),
    }
    for s in &shards[..2] {
        assert_eq!(crunch_store::jobs::get(&mut conn, s.id)?.expect("shard").status, JobStatus::Cancelled);
    }
    Ok(())
}

/// The reconciler fails a job as abandoned after its kind's time budget: a
/// gene file (budget of its own, an hour by default) running for 10 minutes
/// is not abandoned when the other kinds' cutoff (budget + 2 min) has passed.
#[test]
fn abandoned_means_past_the_kinds_own_time_budget() -> anyhow::Result<()> {
    let (mut conn, _, _) = setup(1)?;
    let owner = crunch_store::keys::insert_key(&mut conn, "g", b"hash2")?.id;
    let mut ids = Vec::new();
    for (kind, key) in [(JobKind::Genes, b"g1"), (JobKind::Factorize, b"f1")] {
        let id = Uuid::new_v4();
        let params = json!({"n": "10"});
        crunch_store::jobs::submit(&mut conn, NewJob { id, owner_id: owner, kind, params: &params, dedup_key: key }, false)?;
        start(&mut conn, id)?;
        diesel::sql_query("UPDATE jobs SET started_at = now() - interval '10 minutes' WHERE id = $1")
            .bind::<diesel::sql_types::Uuid, _>(id)
            .execute(&mut conn)?;
        ids.push(id);
    }
    let now = chrono::Utc::now();
    let failed = crunch_store::jobs::fail_abandoned(&mut conn, now - chrono::Duration::minutes(3), now - chrono::Duration::minutes(62), 100)?;
    assert_eq!(failed.iter().map(|r| r.id).collect::<Vec<_>>(), vec![ids[1]], "only the factorization is past its cutoff");
    let failed = crunch_store::jobs::fail_abandoned(&mut conn, now - chrono::Duration::minutes(3), now - chrono::Duration::minutes(5), 100)?;
    assert_eq!(failed.iter().map(|r| r.id).collect::<Vec<_>>(), vec![ids[0]], "past its own cutoff, the gene file too");
    Ok(())
}
