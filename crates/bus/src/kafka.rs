//! Kafka (rdkafka): the idempotent producer of the gateway, the consumer of
//! the persister, and topic creation (tansu, the development broker, does not
//! create topics by itself).

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::StreamConsumer;
use rdkafka::producer::FutureProducer;
use rdkafka::ClientConfig;

pub use rdkafka;

#[derive(Debug, Clone)]
pub struct KafkaConfig {
    pub brokers: String,
    pub selections_topic: String,
    pub dead_letter_topic: String,
    pub group_id: String,
    pub partitions: i32,
}

fn base(cfg: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &cfg.brokers);
    c
}

/// acks=all, idempotent (no duplicates from the producer's own retries).
pub fn producer(cfg: &KafkaConfig, timeout: Duration) -> Result<FutureProducer, rdkafka::error::KafkaError> {
    base(cfg)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", timeout.as_millis().to_string())
        .create()
}

/// A consumer-group member that commits offsets itself, after its database
/// transaction, and starts at the earliest offset when the group has none.
pub fn consumer(cfg: &KafkaConfig) -> Result<StreamConsumer, rdkafka::error::KafkaError> {
    base(cfg)
        .set("group.id", &cfg.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .create()
}

/// Creates the topics unless they exist.
pub async fn ensure_topics(cfg: &KafkaConfig) -> Result<(), rdkafka::error::KafkaError> {
    let admin: AdminClient<DefaultClientContext> = base(cfg).create()?;
    let topics = [
        NewTopic::new(&cfg.selections_topic, cfg.partitions, TopicReplication::Fixed(1)),
        NewTopic::new(&cfg.dead_letter_topic, 1, TopicReplication::Fixed(1)),
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
