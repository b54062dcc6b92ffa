//! The outbox of terminal job events.

use crunch_domain::JobEvent;
use diesel::prelude::*;
use uuid::Uuid;

use crate::error::Result;
use crate::models::EventRow;
use crate::schema::job_events;

/// Writes one event to the outbox (of its `job_id`); its outbox id.
pub fn insert_event(conn: &mut PgConnection, event: &JobEvent) -> Result<i64> {
    insert_events(conn, std::slice::from_ref(event))?.pop().map(|(_, id)| id).ok_or(crate::StoreError::Missing)
}

/// Writes many events to the outbox in one statement: (job id, event id) of each.
pub fn insert_events(conn: &mut PgConnection, events: &[JobEvent]) -> Result<Vec<(Uuid, i64)>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<_> = events
        .iter()
        .map(|e| (job_events::job_id.eq(e.job_id), job_events::event.eq(serde_json::to_value(e).unwrap_or(serde_json::Value::Null))))
        .collect();
    Ok(diesel::insert_into(job_events::table)
        .values(&rows)
        .returning((job_events::job_id, job_events::id))
        .get_results(conn)?)
}

/// An event in the outbox: its row id (to mark it published) and the event.
#[derive(Debug, Clone)]
pub struct Outboxed {
    pub id: i64,
    pub event: JobEvent,
}

/// Unpublished events, oldest first: of one job, or (with `None`) of any job
/// created before `older_than` seconds ago (the relay's sweep).
pub fn unpublished(conn: &mut PgConnection, job: Option<Uuid>, older_than_secs: i64, limit: i64) -> Result<Vec<Outboxed>> {
    let mut q = job_events::table.filter(job_events::published.eq(false)).into_boxed();
    match job {
        Some(id) => q = q.filter(job_events::job_id.eq(id)),
        None => {
            let cutoff = chrono::Utc::now() - chrono::Duration::seconds(older_than_secs);
            q = q.filter(job_events::created_at.lt(cutoff));
        }
    }
    let rows: Vec<EventRow> = q.order(job_events::id.asc()).limit(limit).select(EventRow::as_select()).load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|r| Some(Outboxed { id: r.id, event: serde_json::from_value(r.event).ok()? }))
        .collect())
}

pub fn mark_published(conn: &mut PgConnection, ids: &[i64]) -> Result<()> {
    crate::pool::with_custom_plans(conn, |conn| {
        diesel::update(job_events::table.filter(job_events::id.eq_any(ids)))
            .set(job_events::published.eq(true))
            .execute(conn)?;
        Ok(())
    })
}
