//! Kafka (rdkafka): the ordered producer of the gateway, the consumer of
//! the persister, and topic creation (tansu, the development broker, does not
//! create topics by itself).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Message};

pub use rdkafka::error::KafkaError;

#[derive(Debug, Clone)]
pub struct KafkaConfig {
    pub brokers: String,
    pub selections_topic: String,
    pub dead_letter_topic: String,
    pub group_id: String,
    pub partitions: i32,
    /// Replicas of each topic Crunch creates (at least the brokers'
    /// `min.insync.replicas`: producers wait for acks=all).
    pub replication: i32,
    /// Consumer: `session.timeout.ms`.
    pub session_timeout_ms: u32,
    /// Consumer: `max.poll.interval.ms` (also the rebalance timeout).
    pub max_poll_interval_ms: u32,
}

fn base(cfg: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &cfg.brokers);
    // Notice re-created topics (after a broker restart) within seconds, not
    // librdkafka's default five minutes.
    c.set("topic.metadata.refresh.interval.ms", "3000");
    c
}

/// Re-creates the topics after a failure that may mean a broker restart lost
/// them (tansu's memory storage does; so would a wiped broker): on the error
/// paths, at most once per `every`, in the background.
pub struct TopicGuard {
    cfg: KafkaConfig,
    every: Duration,
    last: std::sync::Mutex<Option<std::time::Instant>>,
}

impl TopicGuard {
    pub fn new(cfg: KafkaConfig, every: Duration) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self { cfg, every, last: std::sync::Mutex::new(None) })
    }

    pub fn poke(self: &std::sync::Arc<Self>) {
        let Ok(mut last) = self.last.lock() else { return };
        if last.is_some_and(|t| t.elapsed() < self.every) {
            return;
        }
        *last = Some(std::time::Instant::now());
        let me = std::sync::Arc::clone(self);
        tokio::spawn(async move {
            if let Err(e) = ensure_topics(&me.cfg).await {
                tracing::debug!(error = %e, "re-creating the Kafka topics failed; will retry on the next error");
            }
        });
    }
}

/// The gateway's side of the selections topic: publishes selection changes
/// keyed by owner (so one owner's changes stay in order), and knows whether
/// the broker and the topic answer ([`SelectionPublisher::spawn_probe`]), so
/// that an outage is refused at once instead of after the producer's timeout.
#[derive(Clone)]
pub struct SelectionPublisher {
    producer: FutureProducer,
    topic: String,
    topics: Arc<TopicGuard>,
    up: Arc<AtomicBool>,
}

/// The broker or the selections topic is unavailable: nothing was published.
#[derive(Debug)]
pub struct Unavailable;

impl SelectionPublisher {
    /// `timeout`: how long a message may wait for the brokers' acks.
    pub fn new(cfg: &KafkaConfig, timeout: Duration) -> Result<Self, KafkaError> {
        Ok(Self {
            producer: producer(cfg, timeout)?,
            topic: cfg.selections_topic.clone(),
            topics: TopicGuard::new(cfg.clone(), Duration::from_secs(2)),
            up: Arc::new(AtomicBool::new(true)),
        })
    }

    /// Publishes one change, acknowledged by the brokers.
    pub async fn publish(&self, msg: &crunch_domain::SelectionMessage) -> Result<(), Unavailable> {
        if !self.up.load(Ordering::Relaxed) {
            return Err(Unavailable);
        }
        let payload = serde_json::to_vec(msg).expect("a selection message is plain JSON");
        let key = msg.owner_id.to_string();
        let record = rdkafka::producer::FutureRecord::to(&self.topic).key(&key).payload(&payload);
        self.producer.send(record, Duration::from_millis(0)).await.map(|_| ()).map_err(|(e, _)| {
            tracing::warn!(error = %e, "producing a selection failed");
            self.topics.poke();
            Unavailable
        })
    }

    /// Asks the broker for the selections topic every 500 ms, and creates
    /// the topics whenever they are missing: at start (tansu creates none by
    /// itself) and after a restart that lost them.
    pub fn spawn_probe(&self) {
        use rdkafka::producer::Producer;
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                let (producer, topic) = (me.producer.clone(), me.topic.clone());
                let ok = tokio::task::spawn_blocking(move || topic_ready(producer.client(), &topic, Duration::from_millis(1000))).await.unwrap_or(false);
                if me.up.swap(ok, Ordering::Relaxed) != ok {
                    if ok {
                        tracing::info!("the Kafka broker and topic are back");
                    } else {
                        tracing::warn!("the Kafka broker or its topic is unavailable");
                    }
                }
                if !ok {
                    me.topics.poke();
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
    }
}

/// acks=all, one request in flight per broker (per-key order kept across
/// retries). Not librdkafka's idempotent mode: after a broker restart that
/// forgets producer ids (tansu's memory storage; a wiped broker) an idempotent
/// producer never delivers again (measured: every message timed out), and the
/// messages are idempotent themselves (add/remove of a set member), so a
/// duplicate from a retry changes nothing and order is all that matters.
pub fn producer(cfg: &KafkaConfig, timeout: Duration) -> Result<FutureProducer, rdkafka::error::KafkaError> {
    base(cfg)
        .set("enable.idempotence", "false")
        .set("max.in.flight.requests.per.connection", "1")
        .set("acks", "all")
        .set("message.timeout.ms", timeout.as_millis().to_string())
        .create()
}

/// A consumer context that raises `outage` when librdkafka loses a broker
/// connection (a transport failure, or every broker down). It is raised on
/// the first failed connection, not only on "all brokers down": librdkafka
/// reports that only once each of its broker handles (bootstrap, the node,
/// the group coordinator) has failed a connection, and a handle in reconnect
/// back-off may not try before the broker is back (measurements in
/// docs/security.md, Outages).
pub struct OutageContext {
    outage: Arc<AtomicBool>,
}

impl ClientContext for OutageContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if matches!(error.rdkafka_error_code(), Some(RDKafkaErrorCode::AllBrokersDown | RDKafkaErrorCode::BrokerTransportFailure)) {
            self.outage.store(true, Ordering::Relaxed);
        }
        tracing::warn!(%error, reason, "Kafka client error");
    }
}

impl ConsumerContext for OutageContext {}

type WatchedConsumer = StreamConsumer<OutageContext>;

/// A message read from a topic, copied out of the consumer's buffer.
#[derive(Debug, Clone)]
pub struct Received {
    pub payload: Option<Vec<u8>>,
    pub key: Option<Vec<u8>>,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// The persister's member of the consumer group on the selections topic: it
/// commits offsets itself, after its database transaction ([`consumer`]), and
/// knows whether a broker connection failed ([`OutageContext`]).
pub struct SelectionConsumer {
    consumer: WatchedConsumer,
    outage: Arc<AtomicBool>,
    topic: String,
}

impl SelectionConsumer {
    /// Joins the group and subscribes to the selections topic, with an outage
    /// flag of its own (a dropped consumer's last callbacks must not condemn
    /// the next one).
    pub fn subscribe(cfg: &KafkaConfig) -> Result<Self, KafkaError> {
        let outage = Arc::new(AtomicBool::new(false));
        let consumer = consumer(cfg, Arc::clone(&outage))?;
        consumer.subscribe(&[&cfg.selections_topic])?;
        Ok(Self { consumer, outage, topic: cfg.selections_topic.clone() })
    }

    /// Set once a broker connection of this consumer failed.
    pub fn outage(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.outage)
    }

    /// The topic's messages as they arrive (cancel-safe between items).
    pub fn messages(&self) -> impl Stream<Item = Result<Received, KafkaError>> + '_ {
        self.consumer.stream().map(|m| {
            m.map(|m| Received {
                payload: m.payload().map(<[u8]>::to_vec),
                key: m.key().map(<[u8]>::to_vec),
                topic: m.topic().to_owned(),
                partition: m.partition(),
                offset: m.offset(),
            })
        })
    }

    /// Commits the offsets after `batch` (synchronously): a restart resumes
    /// after it.
    pub fn commit(&self, batch: &[Received]) -> Result<(), KafkaError> {
        for m in batch {
            self.consumer.store_offset(&m.topic, m.partition, m.offset)?;
        }
        self.consumer.commit_consumer_state(CommitMode::Sync)
    }

    /// Whether the selections topic's metadata is visible (blocking, at most
    /// `timeout`): see [`topic_ready`].
    pub fn topic_ready(&self, timeout: Duration) -> bool {
        topic_ready(self.consumer.client(), &self.topic, timeout)
    }

    /// The lag of each assigned partition (blocking): see [`consumer_lag`].
    pub fn lag(&self, timeout: Duration) -> Result<Vec<(String, i32, i64)>, KafkaError> {
        consumer_lag(&self.consumer, timeout)
    }
}

/// The dead-letter topic: a message that can never be stored goes there with
/// its reason in the header `x-crunch-reason`, its key and payload unchanged.
pub struct DeadLetters {
    producer: FutureProducer,
    topic: String,
    timeout: Duration,
}

impl DeadLetters {
    pub fn new(cfg: &KafkaConfig, timeout: Duration) -> Result<Self, KafkaError> {
        Ok(Self { producer: producer(cfg, timeout)?, topic: cfg.dead_letter_topic.clone(), timeout })
    }

    pub async fn send(&self, m: &Received, reason: &str) -> Result<(), KafkaError> {
        let headers = OwnedHeaders::new().insert(Header { key: "x-crunch-reason", value: Some(reason.as_bytes()) });
        let mut record = FutureRecord::<[u8], [u8]>::to(&self.topic).payload(m.payload.as_deref().unwrap_or_default()).headers(headers);
        if let Some(k) = &m.key {
            record = record.key(k);
        }
        self.producer.send(record, self.timeout).await.map(|_| ()).map_err(|(e, _)| e)
    }
}

/// A consumer-group member that commits offsets itself, after its database
/// transaction, and starts at the earliest offset when the group has none;
/// `outage` is set when a broker connection failed (see [`OutageContext`]).
///
/// `max.poll.interval.ms` is short (8 s by default; a batch of 5,000 takes
/// about 0.1 s): it is also how long a rebalance waits for members, and after
/// a broker restart the group may wait for members that are gone. With
/// librdkafka's 300 s default the persister stayed idle in 1 restart of 5
/// (`kafka_outage.rs`); with a short one it resumed in 4 s in every run.
fn consumer(cfg: &KafkaConfig, outage: Arc<AtomicBool>) -> Result<WatchedConsumer, KafkaError> {
    base(cfg)
        .set("group.id", &cfg.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", cfg.session_timeout_ms.to_string())
        .set("max.poll.interval.ms", cfg.max_poll_interval_ms.max(cfg.session_timeout_ms).to_string())
        .create_with_context(OutageContext { outage })
}

/// The lag of each partition assigned to `consumer`: the high watermark
/// minus the group's committed offset (the earliest offset where the group
/// has none), as (topic, partition, messages). Blocking: one offset fetch
/// from the group coordinator and one watermark request per partition, each
/// at most `timeout`.
pub fn consumer_lag<C: ConsumerContext>(consumer: &impl Consumer<C>, timeout: Duration) -> Result<Vec<(String, i32, i64)>, KafkaError> {
    let assignment = consumer.assignment()?;
    if assignment.count() == 0 {
        return Ok(Vec::new());
    }
    let committed = consumer.committed_offsets(assignment, timeout)?;
    committed
        .elements()
        .iter()
        .map(|e| {
            let (low, high) = consumer.fetch_watermarks(e.topic(), e.partition(), timeout)?;
            let done = match e.offset() {
                rdkafka::Offset::Offset(o) => o,
                _ => low,
            };
            Ok((e.topic().to_owned(), e.partition(), (high - done).max(0)))
        })
        .collect()
}

/// Whether `topic` exists with partitions, by a metadata request through
/// `client` (blocking, at most `timeout`): false while every broker is down
/// or the topic is missing.
pub fn topic_ready<C: ClientContext>(client: &rdkafka::client::Client<C>, topic: &str, timeout: Duration) -> bool {
    client
        .fetch_metadata(Some(topic), timeout)
        .map(|m| m.topics().iter().any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty()))
        .unwrap_or(false)
}

/// Creates the topics unless they exist.
pub async fn ensure_topics(cfg: &KafkaConfig) -> Result<(), rdkafka::error::KafkaError> {
    let admin: AdminClient<DefaultClientContext> = base(cfg).create()?;
    let topics = [
        NewTopic::new(&cfg.selections_topic, cfg.partitions, TopicReplication::Fixed(cfg.replication)),
        NewTopic::new(&cfg.dead_letter_topic, 1, TopicReplication::Fixed(cfg.replication)),
    ];
    let results = admin.create_topics(topics.iter(), &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)))).await?;
    for r in results {
        match r {
            Ok(_) | Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(rdkafka::error::KafkaError::AdminOp(code)).inspect_err(|_| tracing::warn!(%topic, ?code, "creating a topic failed"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raised_by(code: RDKafkaErrorCode) -> bool {
        let outage = Arc::new(AtomicBool::new(false));
        OutageContext { outage: Arc::clone(&outage) }.error(KafkaError::Global(code), "test");
        outage.load(Ordering::Relaxed)
    }

    #[test]
    fn a_lost_broker_connection_raises_the_outage_flag() {
        assert!(raised_by(RDKafkaErrorCode::BrokerTransportFailure));
        assert!(raised_by(RDKafkaErrorCode::AllBrokersDown));
    }

    #[test]
    fn other_client_errors_do_not() {
        assert!(!raised_by(RDKafkaErrorCode::MessageTimedOut));
        assert!(!raised_by(RDKafkaErrorCode::UnknownTopicOrPartition));
    }
}
