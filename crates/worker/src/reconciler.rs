//! Keeps the database and the broker in agreement:
//! - republishes queued jobs whose message was never confirmed (the gateway
//!   died or the broker was down at the wrong moment) or that waited too long;
//! - fails running jobs whose worker died and whose message cannot come back;
//! - relays outbox events nobody published (e.g. cancellations);
//! - starts the check job of every monitor that is due.
//!
//! Every worker replica runs one; the job queries take a transaction-scoped
//! advisory lock, so one replica at a time does the work.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use crate::process::{db, relay, settle, Published};
use crate::Shared;

pub async fn run(shared: Arc<Shared>) {
    let every = Duration::from_millis(shared.cfg.reconcile.reconcile_interval_ms.max(50));
    // How far the scan for never-confirmed rows got (by `updated_at`).
    let mut watermark = chrono::DateTime::<Utc>::UNIX_EPOCH;
    loop {
        tokio::time::sleep(every).await;
        if shared.shutting_down() {
            return;
        }
        let Some(bus) = shared.bus() else { continue };
        watermark = pass(&shared, &bus, watermark).await;
    }
}

async fn pass(shared: &Shared, bus: &crunch_bus::Bus, watermark: chrono::DateTime<Utc>) -> chrono::DateTime<Utc> {
    let now = Utc::now();
    let grace = chrono::Duration::seconds(shared.cfg.reconcile.unpublished_grace_secs as i64);
    let stuck = chrono::Duration::seconds(shared.cfg.reconcile.stuck_after_secs as i64);
    let found = db(shared, "reconcile", move |c| crunch_store::jobs::reconcile_candidates(c, watermark, now - grace, now - stuck, 500)).await;
    let (rows, scanned_to) = found.unwrap_or((Vec::new(), watermark));
    for row in rows {
        match crate::process::publish_row(shared, bus, &row).await {
            Published::Sent => tracing::info!(job_id = %row.id, "republished a queued job"),
            Published::Failed => {}
            // Still unpublished: the next pass scans these rows again.
            Published::Unsent => return watermark,
        }
    }
    // No attempt outlives its time budget (gene files have their own);
    // allow two minutes for the rest.
    let cutoff = now - chrono::Duration::seconds(shared.cfg.time_budget_secs as i64 + 120);
    let genes_cutoff = now - chrono::Duration::seconds(shared.cfg.genes.genes_time_budget_secs as i64 + 120);
    if let Some(rows) = db(shared, "fail abandoned", move |c| crunch_store::jobs::fail_abandoned(c, cutoff, genes_cutoff, 500)).await {
        for row in &rows {
            tracing::warn!(job_id = %row.id, "failed an abandoned job");
            if row.parent_id.is_some() {
                // A shard: its parent retries it or fails.
                settle(shared, bus, row).await;
            }
        }
    }
    // Monitors that are due get their check job, published here; one that
    // fails to publish is republished with the other unconfirmed jobs.
    if let Some(rows) = db(shared, "start monitor checks", |c| crunch_store::monitors::start_due(c, 200)).await {
        for row in &rows {
            crate::process::publish_row(shared, bus, row).await;
        }
    }
    relay(shared, bus, None, 1).await;
    scanned_to
}
