//! One delivery, start to ack.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crunch_bus::Delivery;
use crunch_bus::Bus;
use crunch_compute::Control;
use crunch_domain::{DecodeError, EventType, JobError, JobEvent, JobMessage, JobSpec, JobStatus};
use crunch_store::events::Outboxed;
use crunch_store::jobs::{ParentUpdate, Started};
use crunch_store::models::{JobRow, NewShard};
use crunch_store::{PgConnection, StoreError};
use tracing::Instrument;
use uuid::Uuid;

use crate::kinds::{self, Outcome};
use crate::Shared;

/// Runs `f` on a blocking thread with a pooled connection, retrying with
/// backoff while the database is unreachable. Gives up (`None`) when the
/// worker shuts down, or after a few errors that are not outages.
pub async fn db<T, F>(shared: &Shared, what: &str, f: F) -> Option<T>
where
    T: Send + 'static,
    F: Fn(&mut PgConnection) -> Result<T, StoreError> + Send + Sync + Clone + 'static,
{
    let mut backoff = crunch_service::Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    let mut hard_failures = 0;
    loop {
        let pool = shared.pool.clone();
        let g = f.clone();
        let res = tokio::task::spawn_blocking(move || {
            let mut conn = pool.get()?;
            g(&mut conn)
        })
        .await;
        match res {
            Ok(Ok(v)) => return Some(v),
            Ok(Err(e)) if e.is_unavailable() => tracing::warn!(error = %e, what, retry_in = ?backoff.current(), "database unavailable"),
            Ok(Err(e)) => {
                hard_failures += 1;
                tracing::error!(error = ?e, what, "database error");
                if hard_failures >= 3 {
                    return None;
                }
            }
            Err(e) => {
                tracing::error!(error = %e, what, "blocking task failed");
                return None;
            }
        }
        if shared.shutting_down() {
            return None;
        }
        backoff.wait().await;
    }
}

/// Publishes the job's outbox events that are not yet published, then marks
/// them. A crash in between re-sends them later; consumers drop duplicates by
/// `event_id`. Whether there were any.
pub async fn relay(shared: &Shared, bus: &Bus, job: Option<Uuid>, older_than_secs: i64) -> bool {
    let Some(events) = db(shared, "read outbox", move |c| crunch_store::events::unpublished(c, job, older_than_secs, 500)).await
    else {
        return false;
    };
    publish_outbox_events(shared, bus, &events).await;
    !events.is_empty()
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Disposition {
    Ack,
    /// Give the message back to the queue (the worker is stopping, or the
    /// database could not be reached for good).
    Requeue,
}

impl Disposition {
    /// `crunch_worker_messages_total{outcome}` (dead letters are acked).
    pub(crate) fn count(self, shared: &Shared) {
        let outcome = match self {
            Disposition::Ack => "acked",
            Disposition::Requeue => "requeued",
        };
        shared.metrics.messages.with_label_values(&[outcome]).inc();
    }
}

pub async fn handle(shared: &Shared, bus: &Bus, delivery: Delivery) {
    let disposition = process(shared, bus, &delivery).await;
    disposition.count(shared);
    let res = match disposition {
        Disposition::Ack => crunch_bus::ack(&delivery).await,
        Disposition::Requeue => crunch_bus::requeue(&delivery).await,
    };
    if let Err(e) = res {
        // The channel is gone; the broker redelivers the message, which is harmless.
        tracing::warn!(error = %e, "ack/nack failed");
    }
}

/// Fails a job that can never run (unless it ended already) and relays its
/// end; a shard's parent is settled.
pub(crate) async fn fail_unrunnable(shared: &Shared, bus: &Bus, id: Uuid, error: JobError) {
    let error = error.to_value();
    let failed = db(shared, "fail unrunnable job", move |c| crunch_store::jobs::fail_unrunnable(c, id, error.clone())).await;
    if let Some(Some(row)) = failed.filter(|r| r.as_ref().is_some_and(|r| r.parent_id.is_some())) {
        // Boxed: settling a parent may publish (and so fail) a shard again.
        Box::pin(settle(shared, bus, &row)).await;
    }
    relay(shared, bus, Some(id), 0).await;
}

pub(crate) async fn dead_letter(shared: &Shared, bus: &Bus, delivery: &Delivery, job: Option<Uuid>, code: &'static str, reason: String) -> Disposition {
    tracing::warn!(job_id = ?job, code, %reason, "dead-lettering a message that can never succeed");
    if let Some(id) = job {
        fail_unrunnable(shared, bus, id, JobError::new(code, reason.clone())).await;
    }
    match bus.dead_letter(&delivery.data, &format!("{code}: {reason}")).await {
        Ok(()) => {
            shared.metrics.dead_letter(code);
            Disposition::Ack
        }
        Err(e) => {
            tracing::warn!(error = %e, "dead-lettering failed; requeueing");
            Disposition::Requeue
        }
    }
}

pub(crate) async fn process(shared: &Shared, bus: &Bus, delivery: &Delivery) -> Disposition {
    let msg = match JobMessage::decode(&delivery.data, &shared.limits) {
        Ok(m) => m,
        Err(DecodeError::Malformed { job_id, reason }) => return dead_letter(shared, bus, delivery, job_id, "malformed_message", reason).await,
        Err(DecodeError::Invalid { job_id, error }) => return dead_letter(shared, bus, delivery, Some(job_id), error.code(), error.message()).await,
    };
    let span = tracing::info_span!("job", job_id = %msg.job_id, kind = %msg.spec.kind());
    run_job(shared, bus, delivery, msg).instrument(span).await
}

/// What a running kernel said: how far it is, or what it is doing.
enum Said {
    Progress(f64),
    Stage(String),
}

async fn run_job(shared: &Shared, bus: &Bus, delivery: &Delivery, msg: JobMessage) -> Disposition {
    let JobMessage { job_id: id, spec, .. } = msg;
    let Some(started) = db(shared, "start job", move |c| crunch_store::jobs::start(c, id)).await else {
        return Disposition::Requeue;
    };
    let row = match started {
        Started::Run(row) => row,
        // A message for a job that was never submitted: dead-lettered like
        // any other message that can never succeed.
        Started::Missing => return dead_letter(shared, bus, delivery, Some(id), "unknown_job", "no such job in the database".into()).await,
        other => return not_run(shared, bus, id, other).await,
    };
    if let Some(reason) = too_many_attempts(shared, &row) {
        return dead_letter(shared, bus, delivery, Some(id), "too_many_attempts", reason).await;
    }
    let is_shard = row.parent_id.is_some();
    let kind = spec.kind();
    if !is_shard {
        let _ = bus.publish_event(&crunch_store::jobs::started_event(&row)).await;
        if let Some(shards) = kinds::split(&spec, &shared.cfg.shards) {
            return split(shared, bus, &row, shards).await;
        }
    }

    // The kernel runs on rayon or as a task of its own; this task watches for
    // cancellation and relays progress.
    let cancel = Arc::new(AtomicBool::new(false));
    let (progress_tx, mut progress_rx) = tokio::sync::mpsc::unbounded_channel::<Said>();
    let stage_tx = progress_tx.clone();
    let ctl = Control::unlimited()
        .with_cancel_flag(Arc::clone(&cancel))
        .with_deadline(Instant::now() + kinds::budget(&spec, &shared.cfg))
        .with_progress(move |p| {
            let _ = progress_tx.send(Said::Progress(p));
        })
        .with_stage(move |s| {
            let _ = stage_tx.send(Said::Stage(s.to_owned()));
        });
    let kinds::Running { outcome: rx, abort } = kinds::start(spec, ctl, shared, id);
    let mut io_task = abort;
    tokio::pin!(rx);
    // The first look for a cancellation after one period (a job that ends
    // sooner costs no query).
    let poll = Duration::from_millis(shared.cfg.cancel_poll_ms.max(10));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + poll, poll);
    let mut last_progress = Instant::now();
    let (mut progress, mut stage): (f64, Option<String>) = (0.0, None);
    let mut unreported = false;
    let outcome = loop {
        tokio::select! {
            out = &mut rx => break out,
            _ = tick.tick() => {
                let pool = shared.pool.clone();
                let status = tokio::task::spawn_blocking(move || {
                    let mut c = pool.get()?;
                    crunch_store::jobs::status(&mut c, id)
                }).await;
                if matches!(status, Ok(Ok(Some(JobStatus::Cancelled))) | Ok(Ok(None))) {
                    cancel.store(true, Ordering::Relaxed);
                    if let Some(task) = io_task.take() {
                        // An I/O job may be waiting on a socket: stop it now.
                        task.abort();
                        break Some(Outcome::Cancelled);
                    }
                }
            }
            Some(said) = progress_rx.recv() => {
                let mut fresh_stage = None;
                for said in std::iter::once(said).chain(std::iter::from_fn(|| progress_rx.try_recv().ok())) {
                    match said {
                        Said::Progress(p) => progress = p,
                        Said::Stage(s) => fresh_stage = Some(s),
                    }
                }
                if fresh_stage.is_some() {
                    stage = fresh_stage;
                }
                unreported = true;
            }
        }
        // At most four reports a second; what was said meanwhile waits for
        // the next report (the cancel poll's tick at the latest).
        if unreported && last_progress.elapsed() >= Duration::from_millis(250) && progress < 1.0 {
            unreported = false;
            last_progress = Instant::now();
            if !is_shard {
                let mut ev = JobEvent::new(EventType::Progress, id, kind, row.owner_id, progress);
                ev.data = stage.as_ref().map(|s| serde_json::json!({ "stage": s }));
                let _ = bus.publish_event(&ev).await;
            }
            let pool = shared.pool.clone();
            let (p, s) = (progress, stage.clone());
            let _ = tokio::task::spawn_blocking(move || {
                let mut c = pool.get()?;
                crunch_store::jobs::set_progress(&mut c, id, p, s.as_deref())
            })
            .await;
        }
    };
    let result = match outcome {
        Some(Outcome::Succeeded(v)) => Ok(v),
        Some(Outcome::Failed(e)) => Err(e.to_value()),
        Some(Outcome::Cancelled) => {
            tracing::info!("job cancelled");
            relay(shared, bus, Some(id), 0).await;
            return Disposition::Ack;
        }
        Some(Outcome::Retry(why)) => {
            tracing::warn!(%why, "transient failure; the job goes back to the queue");
            tokio::time::sleep(Duration::from_secs(1)).await;
            return Disposition::Requeue;
        }
        None => {
            tracing::error!("the kernel panicked");
            Err(kernel_panicked())
        }
    };
    let finished = db(shared, "finish job", move |c| crunch_store::jobs::finish(c, id, result.clone())).await;
    match finished {
        None => Disposition::Requeue,
        Some(None) => {
            tracing::info!("job ended elsewhere meanwhile (cancelled or finished by another delivery)");
            let _ = relay(shared, bus, Some(id), 0).await;
            Disposition::Ack
        }
        Some(Some((row, event))) => {
            if row.parent_id.is_some() {
                settle(shared, bus, &row).await;
            }
            // The terminal event was written with the result: publish it now
            // (no read back); if that fails the relay's sweep sends it later.
            if let Some(ev) = event {
                publish_outbox_events(shared, bus, &[ev]).await;
            }
            Disposition::Ack
        }
    }
}

/// The error of a job whose kernel panicked.
pub(crate) fn kernel_panicked() -> serde_json::Value {
    JobError::new("internal_error", "the job's kernel failed unexpectedly").to_value()
}

/// Why a job just started must not run: it was started more than
/// `CRUNCH_DELIVERY_LIMIT` times without finishing (each time its worker
/// died: a job that kills workers). The broker's own delivery limit counts
/// messages returned unrun as well; this counts runs.
pub(crate) fn too_many_attempts(shared: &Shared, row: &JobRow) -> Option<String> {
    let limit = shared.cfg.core.amqp.delivery_limit;
    (i64::from(row.attempts) > limit).then(|| {
        format!("the job was started {} times and its worker stopped each time (CRUNCH_DELIVERY_LIMIT is {limit})", row.attempts - 1)
    })
}

/// A delivery whose job was not taken: it already ended (a duplicate
/// delivery: its terminal event is sent again, a shard's parent settled) or
/// is gone.
pub(crate) async fn not_run(shared: &Shared, bus: &Bus, id: Uuid, started: Started) -> Disposition {
    match started {
        Started::Ended(row) => {
            tracing::info!(job_id = %id, status = %row.status, "job already ended; acknowledging the duplicate delivery");
            // From the outbox, or rebuilt from the row (a quick job has no
            // outbox row: its message is the only trace of an event not yet
            // sent). Consumers drop the duplicate by `event_id`.
            if !relay(shared, bus, Some(id), 0).await {
                if let Some(ev) = crunch_store::jobs::terminal_event(&row) {
                    if let Err(e) = bus.publish_event(&ev).await {
                        tracing::warn!(job_id = %id, error = %e, "terminal event not published; the message goes back to the queue");
                        return Disposition::Requeue;
                    }
                }
            }
            if row.parent_id.is_some() && row.status.is_terminal() {
                settle(shared, bus, &row).await;
            }
        }
        Started::Missing => tracing::warn!(job_id = %id, "no such job in the database; dropping the message"),
        Started::Run(_) => tracing::error!(job_id = %id, "not_run called for a job that runs"),
    }
    Disposition::Ack
}

/// Publishes outbox events read or just written (one message for all) and
/// queues their marks; if the broker refuses, the relay's sweep sends them
/// later (consumers drop duplicates by `event_id`).
pub(crate) async fn publish_outbox_events(shared: &Shared, bus: &Bus, evs: &[Outboxed]) {
    let events: Vec<JobEvent> = evs.iter().map(|o| o.event.clone()).collect();
    match bus.publish_events(&events).await {
        Ok(()) => evs.iter().for_each(|o| {
            let _ = shared.published_events.send(o.id);
        }),
        Err(e) => tracing::warn!(error = %e, events = evs.len(), "events not published; will retry"),
    }
}

/// Stores a wide job's shards as jobs, publishes them and leaves the parent
/// running: the shards settle it as they end. Safe to repeat (a redelivered
/// parent finds its shards and republishes the unconfirmed ones).
async fn split(shared: &Shared, bus: &Bus, parent: &JobRow, plan: Vec<JobSpec>) -> Disposition {
    let shards: Vec<NewShard> = plan
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let mut key = Uuid::new_v4().as_bytes().to_vec();
            key.extend_from_slice(Uuid::new_v4().as_bytes());
            NewShard { id: Uuid::new_v4(), owner_id: parent.owner_id, kind: spec.kind(), params: spec.canonical_params(), dedup_key: key, parent_id: parent.id, shard_index: i as i32 }
        })
        .collect();
    let parent_id = parent.id;
    let shards = Arc::new(shards);
    let Some(rows) = db(shared, "create shards", move |c| crunch_store::jobs::create_shards(c, parent_id, &shards)).await else {
        return Disposition::Requeue;
    };
    tracing::info!(shards = rows.len(), "split into shards");
    for row in rows.iter().filter(|r| r.status == JobStatus::Queued && r.published_at.is_none()) {
        publish_row(shared, bus, row).await;
    }
    Disposition::Ack
}

/// What [`publish_row`] did with a queued job.
pub(crate) enum Published {
    /// The broker took its message; the row is marked published.
    Sent,
    /// Its stored spec is invalid against this worker's limits: the job was
    /// failed instead (as its message would be dead-lettered).
    Failed,
    /// The broker did not take it: left unpublished, for the reconciler.
    Unsent,
}

/// Publishes a queued job's message and marks the row published.
pub(crate) async fn publish_row(shared: &Shared, bus: &Bus, row: &JobRow) -> Published {
    let msg = match row.message(&shared.limits) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(job_id = %row.id, error = %e.message(), "a stored job cannot run here; failing it");
            fail_unrunnable(shared, bus, row.id, JobError::new(e.code(), e.message())).await;
            return Published::Failed;
        }
    };
    match bus.publish_job(&msg).await {
        Ok(()) => {
            let id = row.id;
            let _ = db(shared, "mark published", move |c| crunch_store::jobs::mark_published(c, id)).await;
            Published::Sent
        }
        Err(e) => {
            tracing::warn!(job_id = %row.id, error = %e, "publishing failed");
            Published::Unsent
        }
    }
}

/// After a shard ended: update, retry the shard, or finish its parent.
pub async fn settle(shared: &Shared, bus: &Bus, shard: &JobRow) {
    let Some(parent) = shard.parent_id else { return };
    let update = db(shared, "settle parent", move |c| crunch_store::jobs::settle_parent(c, parent, kinds::aggregate)).await;
    match update {
        Some(ParentUpdate::Progress(p)) => {
            let ev = JobEvent::new(EventType::Progress, p.id, p.kind, p.owner_id, p.progress);
            let _ = bus.publish_event(&ev).await;
        }
        Some(ParentUpdate::RetryShard(s)) => {
            tracing::warn!(shard = %s.id, attempts = s.attempts, "retrying a failed shard");
            publish_row(shared, bus, &s).await;
        }
        Some(ParentUpdate::Finished(p)) => {
            let _ = relay(shared, bus, Some(p.id), 0).await;
        }
        Some(ParentUpdate::Nothing) | None => {}
    }
}
