//! What every handler shares.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use crunch_bus::Bus;
use crunch_domain::{JobEvent, Limits};
use crunch_store::PgPool;
use tokio::sync::{broadcast, watch};

use crate::metrics::Metrics;

pub struct AppState {
    pub pool: PgPool,
    /// What monitors a key may have.
    pub monitors: MonitorSettings,
    /// The current broker connection; `None` while RabbitMQ is unreachable.
    pub bus: watch::Receiver<Option<Bus>>,
    pub limits: Limits,
    /// Every job event this replica receives, for its WebSocket clients.
    pub events: broadcast::Sender<JobEvent>,
    pub metrics: Metrics,
    /// Publishes selection changes to Kafka (503 at once while the broker
    /// or the topic is unavailable).
    pub selections: crunch_bus::kafka::SelectionPublisher,
    /// Uploaded gene files and result documents.
    pub blobs: crunch_blob::Blobs,
    pub genes_max_upload_bytes: u64,
    /// Per-key request allowance (`crate::protect`).
    pub rate_limits: crate::protect::RateLimits,
    /// Keys looked up recently (`crate::auth`).
    pub keys: crate::auth::KeyCache,
    /// Database lookups of keys not in the cache, per client address, and
    /// how many may run at once (half the pool) and be waited for.
    pub key_lookup_limits: crate::protect::RateLimits<std::net::IpAddr>,
    pub key_lookups: tokio::sync::Semaphore,
    pub key_lookup_wait: std::time::Duration,
    /// How often an open event socket checks that its key is still active.
    pub key_recheck: std::time::Duration,
    /// Whether the database's migrations are applied and the configured
    /// admin key registered (retried in the background when the database
    /// was down at start-up).
    pub migrated: tokio::sync::watch::Receiver<bool>,
    /// Open event sockets per key.
    pub sockets: Slots,
    /// Gene-file uploads in progress per key.
    pub uploads: Slots,
    /// Queued or running jobs per key (`CRUNCH_MAX_QUEUED_JOBS_PER_KEY`).
    pub queued_jobs: crate::protect::QueuedJobs,
    /// When `/metrics` last read the database and the queues (one refresh at a time).
    pub metrics_refreshed: tokio::sync::Mutex<Option<std::time::Instant>>,
    /// Jobs whose message the broker confirmed: marked in batches.
    pub published_jobs: tokio::sync::mpsc::UnboundedSender<uuid::Uuid>,
    /// Job submissions, written in batches (one transaction for many).
    pub submissions: crunch_service::GroupCommit<crunch_store::jobs::Submission, crunch_store::jobs::Submitted>,
    /// Best-effort live events (`queued`), published in batches.
    pub live_events: tokio::sync::mpsc::UnboundedSender<JobEvent>,
}

impl AppState {
    pub fn bus(&self) -> Option<Bus> {
        self.bus.borrow().clone().filter(|b| b.is_connected())
    }
}

/// Things held open per API key (event sockets, uploads), at most
/// `max_per_key` each on this replica.
pub struct Slots {
    pub max_per_key: u32,
    open: std::sync::Arc<Mutex<std::collections::HashMap<uuid::Uuid, u32>>>,
}

/// One place taken; freed when dropped.
pub struct Slot {
    key: uuid::Uuid,
    open: std::sync::Arc<Mutex<std::collections::HashMap<uuid::Uuid, u32>>>,
}

impl Slots {
    pub fn new(max_per_key: u32) -> Self {
        Self { max_per_key, open: Default::default() }
    }

    /// A place for one more of `key`'s, or None at the limit.
    pub fn take(&self, key: uuid::Uuid) -> Option<Slot> {
        let mut open = self.open.lock().ok()?;
        let n = open.entry(key).or_insert(0);
        if *n >= self.max_per_key {
            return None;
        }
        *n += 1;
        Some(Slot { key, open: std::sync::Arc::clone(&self.open) })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.open.lock() {
            if let Some(n) = open.get_mut(&self.key) {
                *n -= 1;
                if *n == 0 {
                    open.remove(&self.key);
                }
            }
        }
    }
}

/// Drops re-sent terminal events (the outbox relay may publish one twice if a
/// worker dies between publishing and marking it), remembering the last
/// `capacity` event ids.
pub struct Dedup {
    seen: HashSet<i64>,
    order: VecDeque<i64>,
    capacity: usize,
}

impl Dedup {
    pub fn new(capacity: usize) -> Self {
        Self { seen: HashSet::new(), order: VecDeque::new(), capacity }
    }

    /// `true` the first time an id is seen.
    pub fn first_time(&mut self, id: i64) -> bool {
        if !self.seen.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        true
    }
}

pub type SharedDedup = Mutex<Dedup>;

/// The shortest interval a monitor may have and how many a key may have.
#[derive(Debug, Clone, Copy)]
pub struct MonitorSettings {
    pub min_interval_s: u64,
    pub per_key: i64,
}
