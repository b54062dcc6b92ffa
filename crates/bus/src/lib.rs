//! Crunch's RabbitMQ adapter.
//!
//! # Topology (names prefixed with the configured namespace, default `crunch`)
//! - exchange `{ns}.jobs` (direct): routing key `cpu` -> quorum queue
//!   `{ns}.jobs.cpu`, key `io` -> quorum queue `{ns}.jobs.io` (URL checks,
//!   scrapes: consumed with their own concurrency limit), key `quick` ->
//!   quorum queue `{ns}.jobs.quick` (jobs of about a millisecond, taken in
//!   batches: [`JobMessage::is_quick`]); all three dead-letter to `{ns}.dlx`;
//!   the cpu and io queues after `delivery_limit` deliveries (a message that
//!   keeps killing workers), the quick queue has no broker limit (its worker
//!   counts runs instead).
//! - exchange `{ns}.dlx` (fanout) -> queue `{ns}.jobs.dead`: messages that can
//!   never succeed, each with an `x-crunch-reason` header.
//! - exchange `{ns}.events` (fanout): job events, one per message or many as
//!   a JSON array; each gateway replica binds its own exclusive queue, so
//!   every replica sees every event.
//!
//! Publishing waits for the broker's confirm, bounded by a timeout.

use std::time::Duration;

pub mod kafka;

use crunch_domain::{JobEvent, JobMessage};
use futures::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer, ExchangeKind};

pub use lapin;

/// A job message as delivered by RabbitMQ (its bytes in `data`), and the
/// stream of them a consumer yields. The services settle deliveries through
/// [`ack`], [`ack_up_to`] and [`requeue`], not through the client library.
pub use lapin::message::Delivery;
pub use lapin::Consumer as Deliveries;

/// Acknowledges one delivery: it is done.
pub async fn ack(d: &Delivery) -> Result<()> {
    d.acker.ack(lapin::options::BasicAckOptions::default()).await?;
    Ok(())
}

/// Acknowledges `d` and every earlier delivery of its channel at once.
pub async fn ack_up_to(d: &Delivery) -> Result<()> {
    d.acker.ack(lapin::options::BasicAckOptions { multiple: true }).await?;
    Ok(())
}

/// Gives a delivery back to its queue, to be delivered again.
pub async fn requeue(d: &Delivery) -> Result<()> {
    d.acker.nack(lapin::options::BasicNackOptions { requeue: true, ..Default::default() }).await?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("message broker unavailable: {0}")]
    Unavailable(String),
    #[error("the broker did not confirm the message within {0:?}")]
    ConfirmTimeout(Duration),
    #[error("the broker refused the message")]
    Nacked,
    #[error("AMQP error: {0}")]
    Amqp(#[from] lapin::Error),
}

pub type Result<T> = std::result::Result<T, BusError>;

/// Where and how to talk to RabbitMQ.
#[derive(Debug, Clone)]
pub struct BusConfig {
    pub url: String,
    /// Prefix of every exchange and queue (tests use a random one).
    pub namespace: String,
    /// Deliveries of one message before the broker dead-letters it.
    pub delivery_limit: i64,
    /// Longest wait for a publisher confirm.
    pub confirm_timeout: Duration,
    /// Delete idle queues after this long (tests only; `None` in production).
    pub queue_expires: Option<Duration>,
}

impl BusConfig {
    pub fn jobs_exchange(&self) -> String {
        format!("{}.jobs", self.namespace)
    }
    pub fn events_exchange(&self) -> String {
        format!("{}.events", self.namespace)
    }
    pub fn dlx_exchange(&self) -> String {
        format!("{}.dlx", self.namespace)
    }
    pub fn cpu_queue(&self) -> String {
        format!("{}.jobs.cpu", self.namespace)
    }
    pub fn io_queue(&self) -> String {
        format!("{}.jobs.io", self.namespace)
    }
    pub fn quick_queue(&self) -> String {
        format!("{}.jobs.quick", self.namespace)
    }
    pub fn dead_queue(&self) -> String {
        format!("{}.jobs.dead", self.namespace)
    }
    /// Every queue of the namespace's topology.
    pub fn queues(&self) -> [String; 4] {
        [self.cpu_queue(), self.io_queue(), self.quick_queue(), self.dead_queue()]
    }
    /// Every exchange of the namespace's topology.
    pub fn exchanges(&self) -> [String; 3] {
        [self.jobs_exchange(), self.dlx_exchange(), self.events_exchange()]
    }
}

/// Routing key of CPU-bound jobs.
pub const CPU_ROUTE: &str = "cpu";
/// Routing key of I/O-bound jobs (URL checks, scrapes).
pub const IO_ROUTE: &str = "io";
/// Routing key of quick jobs ([`JobMessage::is_quick`]).
pub const QUICK_ROUTE: &str = "quick";

/// Which job queue a message goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobQueue {
    Cpu,
    Io,
    Quick,
}

impl JobQueue {
    /// By the message: quick jobs, then I/O kinds, then the rest.
    pub fn for_message(msg: &JobMessage) -> Self {
        if msg.is_quick() {
            JobQueue::Quick
        } else if msg.spec.kind().is_io() {
            JobQueue::Io
        } else {
            JobQueue::Cpu
        }
    }

    pub fn route(self) -> &'static str {
        match self {
            JobQueue::Cpu => CPU_ROUTE,
            JobQueue::Io => IO_ROUTE,
            JobQueue::Quick => QUICK_ROUTE,
        }
    }
}
/// Header carrying why a message was dead-lettered.
pub const REASON_HEADER: &str = "x-crunch-reason";

fn s(v: impl Into<String>) -> ShortString {
    ShortString::from(v.into())
}

/// One connection with a confirming publisher channel.
#[derive(Clone)]
pub struct Bus {
    cfg: BusConfig,
    conn: std::sync::Arc<Connection>,
    publisher: Channel,
}

impl Bus {
    /// Connects, opens a confirming channel and declares the topology.
    pub async fn connect(cfg: &BusConfig, name: &str) -> Result<Self> {
        let props = ConnectionProperties::default().with_connection_name(LongString::from(name.to_owned()));
        let conn = tokio::time::timeout(Duration::from_secs(5), Connection::connect(&cfg.url, props))
            .await
            .map_err(|_| BusError::Unavailable("connection timed out".into()))??;
        let publisher = conn.create_channel().await?;
        publisher.confirm_select(ConfirmSelectOptions::default()).await?;
        let bus = Self { cfg: cfg.clone(), conn: std::sync::Arc::new(conn), publisher };
        bus.declare_topology().await?;
        Ok(bus)
    }

    pub fn config(&self) -> &BusConfig {
        &self.cfg
    }

    pub fn is_connected(&self) -> bool {
        self.conn.status().connected() && self.publisher.status().connected()
    }

    /// Declares the exchanges, queues and bindings. All eleven methods are
    /// sent at once on one channel, where the broker runs them in order and
    /// answers in order (lapin matches the answers): one round trip instead
    /// of eleven at every service's start and reconnection.
    async fn declare_topology(&self) -> Result<()> {
        use futures::future::{BoxFuture, FutureExt};
        let ch = &self.publisher;
        let durable = ExchangeDeclareOptions { durable: true, ..Default::default() };
        let mut quick_args = FieldTable::default();
        quick_args.insert(s("x-queue-type"), AMQPValue::LongString(LongString::from("quorum")));
        quick_args.insert(s("x-dead-letter-exchange"), AMQPValue::LongString(LongString::from(self.cfg.dlx_exchange())));
        if let Some(exp) = self.cfg.queue_expires {
            quick_args.insert(s("x-expires"), AMQPValue::LongLongInt(exp.as_millis() as i64));
        }
        // The quick queue has no broker delivery limit: a worker holds a
        // thousand of its messages, and a crash returns them all with their
        // delivery count raised although most never ran (measured: 20 worker
        // kills in 8 s dead-lettered 256 innocent jobs at a limit of 5). The
        // worker counts real runs instead (the row's `attempts`).
        let mut args = quick_args.clone();
        args.insert(s("x-delivery-limit"), AMQPValue::LongLongInt(self.cfg.delivery_limit));
        let mut dargs = FieldTable::default();
        dargs.insert(s("x-queue-type"), AMQPValue::LongString(LongString::from("quorum")));
        if let Some(exp) = self.cfg.queue_expires {
            dargs.insert(s("x-expires"), AMQPValue::LongLongInt(exp.as_millis() as i64));
        }
        let qopts = QueueDeclareOptions { durable: true, ..Default::default() };
        let mut steps: Vec<BoxFuture<'_, lapin::Result<()>>> = Vec::with_capacity(11);
        for (name, kind) in [
            (self.cfg.jobs_exchange(), ExchangeKind::Direct),
            (self.cfg.dlx_exchange(), ExchangeKind::Fanout),
            (self.cfg.events_exchange(), ExchangeKind::Fanout),
        ] {
            steps.push(ch.exchange_declare(s(name), kind, durable, FieldTable::default()).boxed());
        }
        for (queue, exchange, route, args) in [
            (self.cfg.cpu_queue(), self.cfg.jobs_exchange(), CPU_ROUTE, args.clone()),
            (self.cfg.io_queue(), self.cfg.jobs_exchange(), IO_ROUTE, args),
            (self.cfg.quick_queue(), self.cfg.jobs_exchange(), QUICK_ROUTE, quick_args),
            (self.cfg.dead_queue(), self.cfg.dlx_exchange(), "", dargs),
        ] {
            steps.push(ch.queue_declare(s(queue.clone()), qopts, args).map(|r| r.map(drop)).boxed());
            steps.push(ch.queue_bind(s(queue), s(exchange), s(route), QueueBindOptions::default(), FieldTable::default()).boxed());
        }
        // Polled in order, so sent in order.
        futures::future::try_join_all(steps).await?;
        Ok(())
    }

    async fn publish(&self, exchange: String, route: &str, payload: &[u8], props: BasicProperties) -> Result<()> {
        if !self.is_connected() {
            return Err(BusError::Unavailable("not connected".into()));
        }
        let timeout = self.cfg.confirm_timeout;
        let confirm = async {
            let pending = self
                .publisher
                .basic_publish(s(exchange), s(route), BasicPublishOptions::default(), payload, props)
                .await?;
            Ok::<_, lapin::Error>(pending.await?)
        };
        let confirmation = tokio::time::timeout(timeout, confirm).await.map_err(|_| BusError::ConfirmTimeout(timeout))??;
        if confirmation.is_nack() {
            return Err(BusError::Nacked);
        }
        Ok(())
    }

    /// Publishes a job (persistent) and waits for the broker's confirm.
    pub async fn publish_job(&self, msg: &JobMessage) -> Result<()> {
        let payload = msg.to_json();
        let props = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type(s("application/json"))
            .with_message_id(s(msg.job_id.to_string()));
        self.publish(self.cfg.jobs_exchange(), JobQueue::for_message(msg).route(), &payload, props).await
    }

    /// Publishes a job event to every gateway replica.
    pub async fn publish_event(&self, ev: &JobEvent) -> Result<()> {
        self.publish_events_json(&serde_json::to_vec(ev).unwrap_or_default()).await
    }

    /// Publishes many job events as one message (a JSON array).
    pub async fn publish_events(&self, evs: &[JobEvent]) -> Result<()> {
        match evs {
            [] => Ok(()),
            [one] => self.publish_event(one).await,
            many => self.publish_events_json(&serde_json::to_vec(many).unwrap_or_default()).await,
        }
    }

    async fn publish_events_json(&self, payload: &[u8]) -> Result<()> {
        let props = BasicProperties::default().with_content_type(s("application/json"));
        self.publish(self.cfg.events_exchange(), "", payload, props).await
    }

    /// Moves a message that can never succeed to the dead-letter queue, with
    /// the reason in a header. The caller acks the original afterwards.
    pub async fn dead_letter(&self, payload: &[u8], reason: &str) -> Result<()> {
        let mut headers = FieldTable::default();
        headers.insert(s(REASON_HEADER), AMQPValue::LongString(LongString::from(reason.to_owned())));
        let props = BasicProperties::default().with_delivery_mode(2).with_headers(headers);
        self.publish(self.cfg.dlx_exchange(), "", payload, props).await
    }

    /// A consumer of a job queue on its own channel, with a bounded prefetch
    /// and manual acks.
    pub async fn consume_jobs(&self, queue: JobQueue, prefetch: u16) -> Result<(Channel, Consumer)> {
        let ch = self.conn.create_channel().await?;
        ch.basic_qos(prefetch, BasicQosOptions::default()).await?;
        let name = match queue {
            JobQueue::Cpu => self.cfg.cpu_queue(),
            JobQueue::Io => self.cfg.io_queue(),
            JobQueue::Quick => self.cfg.quick_queue(),
        };
        let consumer = ch.basic_consume(s(name), s(""), BasicConsumeOptions::default(), FieldTable::default()).await?;
        Ok((ch, consumer))
    }

    /// Binds an exclusive, server-named queue to the events exchange and
    /// streams the events (auto-ack: events are live notifications).
    pub async fn subscribe_events(&self) -> Result<impl futures::Stream<Item = JobEvent> + Send + 'static> {
        let ch = self.conn.create_channel().await?;
        let q = ch
            .queue_declare(s(""), QueueDeclareOptions { exclusive: true, auto_delete: true, ..Default::default() }, FieldTable::default())
            .await?;
        ch.queue_bind(q.name().clone(), s(self.cfg.events_exchange()), s(""), QueueBindOptions::default(), FieldTable::default())
            .await?;
        let consumer = ch
            .basic_consume(q.name().clone(), s(""), BasicConsumeOptions { no_ack: true, ..Default::default() }, FieldTable::default())
            .await?;
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Events {
            One(JobEvent),
            Many(Vec<JobEvent>),
        }
        // Keep the channel alive as long as the stream.
        Ok(consumer.flat_map(move |d| {
            let _keep = &ch;
            let evs = match d.ok().and_then(|d| serde_json::from_slice::<Events>(&d.data).ok()) {
                Some(Events::One(ev)) => vec![ev],
                Some(Events::Many(evs)) => evs,
                None => Vec::new(),
            };
            futures::stream::iter(evs)
        }))
    }

    /// Messages waiting in each of `queues` (for `/metrics`); a queue whose
    /// depth is not known within a second is left out.
    pub async fn queue_depths(&self, queues: impl IntoIterator<Item = String>) -> Vec<(String, u32)> {
        let mut depths = Vec::new();
        for queue in queues {
            if let Ok(Ok(depth)) = tokio::time::timeout(Duration::from_secs(1), self.queue_depth(&queue)).await {
                depths.push((queue, depth));
            }
        }
        depths
    }

    /// Messages waiting in a queue.
    pub async fn queue_depth(&self, queue: &str) -> Result<u32> {
        let ch = self.conn.create_channel().await?;
        let q = ch
            .queue_declare(s(queue), QueueDeclareOptions { passive: true, ..Default::default() }, FieldTable::default())
            .await?;
        let _ = ch.close(200, s("done")).await;
        Ok(q.message_count())
    }

    pub async fn close(&self) {
        let _ = self.conn.close(200, s("shutdown")).await;
    }
}

/// Best-effort live events (`queued`, `started`, progress), sent in batches:
/// whatever queued up while the previous batch was being confirmed goes out
/// as one message (at most `max` events). Nothing waits on the sender; events
/// sent while the broker is down are dropped (the job rows hold the truth, and
/// terminal events go through the outbox instead).
pub fn spawn_event_batcher(bus: tokio::sync::watch::Receiver<Option<Bus>>, max: usize) -> tokio::sync::mpsc::UnboundedSender<JobEvent> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<JobEvent>();
    tokio::spawn(async move {
        let mut buf = Vec::with_capacity(max);
        while rx.recv_many(&mut buf, max.max(1)).await > 0 {
            let current = bus.borrow().clone().filter(Bus::is_connected);
            if let Some(b) = current {
                if let Err(e) = b.publish_events(&buf).await {
                    tracing::debug!(error = %e, events = buf.len(), "live events not published");
                }
            }
            buf.clear();
        }
    });
    tx
}

/// Reads the reason header of a dead-lettered message.
pub fn reason_of(props: &BasicProperties) -> Option<String> {
    props.headers().as_ref()?.inner().get(REASON_HEADER).and_then(|v| match v {
        AMQPValue::LongString(l) => Some(String::from_utf8_lossy(l.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    })
}
