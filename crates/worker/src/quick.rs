//! Quick jobs ([`crunch_domain::JobMessage::is_quick`]: about a millisecond
//! of CPU each) are taken in batches: whatever deliveries are ready (up to
//! `CRUNCH_WORKER_QUICK_BATCH`) run in parallel on rayon, are ended straight
//! from `queued` by one UPDATE ([`crunch_store::jobs::finish_queued`]: no
//! `running` write, no outbox row), their `started` and terminal events go
//! out as one message, and only after its confirm one `multiple` ack settles
//! them. The guarantees are the per-delivery path's ([`crate::process`]): a
//! result is committed before its message is acked, every state change is
//! conditional, and no terminal event is lost: an unacked message is the
//! trace of an event not yet sent, and a redelivered message of an ended job
//! sends it again, rebuilt from the row with the same `event_id`. A delivery
//! that is not a plain quick job (malformed, over a limit, routed here by
//! mistake) takes the per-delivery path, and so does a redelivered one, one
//! at a time: a job that kills its worker then only raises its own
//! `attempts`, and is dead-lettered past `CRUNCH_DELIVERY_LIMIT` runs alone
//! (the quick queue has no broker delivery limit: a crash returns a thousand
//! prefetched messages that never ran).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crunch_bus::Delivery;
use crunch_bus::Bus;
use crunch_compute::Control;
use crunch_domain::{JobMessage, JobStatus};
use crunch_store::jobs::{self, Outcome, QuickEnd, Started};
use futures::StreamExt;
use rayon::prelude::*;
use uuid::Uuid;

use crate::kinds;
use crate::process::{self, db, Disposition};
use crate::Shared;

/// A delivery this batch runs: its job and kernel.
struct Job {
    delivery: Delivery,
    id: Uuid,
    kernel: kinds::Inline,
}

/// Decodes a delivery as a quick job (its id and CPU kernel), or `None` for
/// the per-delivery path.
fn decode(shared: &Shared, d: &Delivery) -> Option<(Uuid, kinds::Inline)> {
    let msg = JobMessage::decode(&d.data, &shared.limits).ok()?;
    if !msg.is_quick() {
        return None;
    }
    kinds::inline(msg.spec).ok().map(|kernel| (msg.job_id, kernel))
}

/// Runs one batch of deliveries; answers what to do with each.
async fn run_batch(shared: Arc<Shared>, bus: Bus, deliveries: Vec<Delivery>) -> Vec<(Delivery, Disposition)> {
    let mut settled = Vec::with_capacity(deliveries.len());
    let mut jobs = Vec::with_capacity(deliveries.len());
    let mut others = Vec::new();
    let mut redelivered = Vec::new();
    for d in deliveries {
        match decode(&shared, &d) {
            // A worker died holding it (maybe because of it): it runs alone,
            // so that a job that kills workers only counts its own attempts.
            Some(_) if d.redelivered => redelivered.push(d),
            Some((id, kernel)) => jobs.push(Job { delivery: d, id, kernel }),
            None => others.push(d),
        }
    }
    let (shared, bus) = (&*shared, &bus);
    let others = futures::future::join_all(others.into_iter().map(|d| async move {
        let disposition = process::process(shared, bus, &d).await;
        (d, disposition)
    }));
    let alone = async {
        let mut done = Vec::with_capacity(redelivered.len());
        for d in redelivered {
            let disposition = process::process(shared, bus, &d).await;
            done.push((d, disposition));
        }
        done
    };
    let (mut others, mut alone, ()) = futures::join!(others, alone, run_jobs(shared, bus, jobs, &mut settled));
    settled.append(&mut others);
    settled.append(&mut alone);
    settled
}

async fn run_jobs(shared: &Shared, bus: &Bus, jobs: Vec<Job>, settled: &mut Vec<(Delivery, Disposition)>) {
    if jobs.is_empty() {
        return;
    }
    // Every kernel of the batch in one rayon task, in parallel.
    let budget = Duration::from_secs(shared.cfg.time_budget_secs);
    let (waiting, work): (Vec<_>, Vec<_>) = jobs.into_iter().map(|j| ((j.delivery, j.id), (j.id, j.kernel))).unzip();
    let pool = shared.pool.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    rayon::spawn(move || {
        let outcomes: Vec<Option<kinds::Outcome>> = work
            .par_iter()
            .map(|(id, kernel)| {
                let ctl = Control::unlimited().with_deadline(Instant::now() + budget);
                let ctx = kinds::JobContext { job_id: *id, pool: pool.clone() };
                std::panic::catch_unwind(AssertUnwindSafe(|| kernel(&ctl, &ctx))).ok()
            })
            .collect();
        let _ = tx.send(outcomes);
    });
    let mut outcomes = rx.await.unwrap_or_default().into_iter();

    let mut to_finish: Vec<(Uuid, Outcome)> = Vec::with_capacity(waiting.len());
    let mut finishing = Vec::with_capacity(waiting.len());
    for (delivery, id) in waiting {
        let result = match outcomes.next().flatten() {
            Some(kinds::Outcome::Succeeded(v)) => Ok(v),
            Some(kinds::Outcome::Failed(e)) => Err(e.to_value()),
            Some(kinds::Outcome::Cancelled) => {
                settled.push((delivery, Disposition::Ack));
                continue;
            }
            Some(kinds::Outcome::Retry(why)) => {
                tracing::warn!(job_id = %id, %why, "transient failure; the job goes back to the queue");
                settled.push((delivery, Disposition::Requeue));
                continue;
            }
            None => {
                tracing::error!(job_id = %id, "the kernel panicked");
                Err(process::kernel_panicked())
            }
        };
        to_finish.push((id, result));
        finishing.push((delivery, id));
    }
    let items = Arc::new(to_finish);
    let Some(ended) = db(shared, "finish quick jobs", move |c| crunch_store::jobs::finish_queued(c, &items)).await else {
        settled.extend(finishing.into_iter().map(|(d, _)| (d, Disposition::Requeue)));
        return;
    };
    // Each top-level job's `started` event, then (after all of them, so that
    // a client sees them in order) its terminal one, in one message.
    let mut events = Vec::with_capacity(2 * ended.len());
    let mut terminal = Vec::with_capacity(ended.len());
    let mut announced = Vec::with_capacity(ended.len());
    for ((delivery, id), end) in finishing.into_iter().zip(ended) {
        match end {
            QuickEnd::Finished(row) if row.parent_id.is_some() => {
                process::settle(shared, bus, &row).await;
                settled.push((delivery, Disposition::Ack));
            }
            QuickEnd::Finished(row) => {
                events.push(jobs::started_event(&row));
                terminal.extend(jobs::terminal_event(&row));
                announced.push(delivery);
            }
            // Another run holds it (its message was redelivered, or a worker
            // died running it alone): back to the queue, to come back
            // redelivered and run alone, counting its attempt.
            QuickEnd::NotQueued(row) if row.status == JobStatus::Running => settled.push((delivery, Disposition::Requeue)),
            QuickEnd::NotQueued(row) => settled.push((delivery, process::not_run(shared, bus, id, Started::Ended(row)).await)),
            QuickEnd::Missing => {
                let d = process::dead_letter(shared, bus, &delivery, Some(id), "unknown_job", "no such job in the database".into()).await;
                settled.push((delivery, d));
            }
        }
    }
    events.append(&mut terminal);
    // These jobs have no outbox row: their messages are acked only once their
    // events are out. If the broker refused them, the messages come back
    // redelivered and their ended jobs' events are sent again from the rows.
    let disposition = match bus.publish_events(&events).await {
        Ok(()) => Disposition::Ack,
        Err(e) => {
            tracing::warn!(error = %e, events = events.len(), "events not published; the messages go back to the queue");
            Disposition::Requeue
        }
    };
    settled.extend(announced.into_iter().map(|d| (d, disposition)));
}

/// Acks and nacks one batch: requeued ones one by one, then every ack with a
/// single `multiple` ack of the highest one. Batches are settled in delivery
/// order, so every earlier delivery on the channel is settled already.
async fn settle_acks(settled: Vec<(Delivery, Disposition)>) {
    let mut last_ack: Option<Delivery> = None;
    for (d, disposition) in settled {
        match disposition {
            Disposition::Requeue => {
                if let Err(e) = crunch_bus::requeue(&d).await {
                    tracing::warn!(error = %e, "nack failed");
                }
            }
            Disposition::Ack => {
                if last_ack.as_ref().is_none_or(|l| l.delivery_tag < d.delivery_tag) {
                    last_ack = Some(d);
                }
            }
        }
    }
    if let Some(d) = last_ack {
        if let Err(e) = crunch_bus::ack_up_to(&d).await {
            // The channel is gone; the broker redelivers, which is harmless.
            tracing::warn!(error = %e, "ack failed");
        }
    }
}

/// How the quick queue's deliveries are grouped.
pub struct Batching {
    /// Most deliveries in a batch.
    pub size: usize,
    /// How long a batch waits for more after its first delivery.
    pub linger: Duration,
    /// Batches in flight at once.
    pub in_flight: usize,
}

/// Runs the quick queue's deliveries in batches, until the stream ends
/// (connection lost or shutdown). A batch takes the deliveries that are
/// ready, and waits up to `linger` after its first one for more: under a
/// steady trickle of jobs, batches of one or two would each cost a
/// transaction, an events message and an ack (at 2,000 submissions/s with a
/// 5 ms wait, batches held about 80 jobs). Under a backlog batches fill at
/// once and nothing waits. Batches are settled in delivery order.
pub async fn consume(shared: &Arc<Shared>, bus: &Bus, deliveries: impl futures::Stream<Item = Delivery> + Send, how: Batching) {
    let size = how.size.max(1);
    let chunks = if how.linger.is_zero() {
        deliveries.ready_chunks(size).left_stream()
    } else {
        tokio_stream::StreamExt::chunks_timeout(deliveries, size, how.linger).right_stream()
    };
    chunks
        .map(|chunk| run_batch(Arc::clone(shared), bus.clone(), chunk))
        .buffered(how.in_flight.max(1))
        .for_each(|settled| {
            for (_, disposition) in &settled {
                disposition.count(shared);
            }
            settle_acks(settled)
        })
        .await;
}
