//! `crunch-persister`: stores the hotels users select. Consumes the Kafka
//! topic `selections` in a consumer group, applies each batch of messages in
//! one PostgreSQL transaction (idempotent: unique owner + hotel), and only
//! then commits the batch's offsets; a crash replays at most the uncommitted
//! batch, which changes nothing. A message that cannot be stored (malformed,
//! unknown hotel) goes to the dead-letter topic with its reason, and
//! consumption goes on. Its health listener serves `/metrics`: messages by
//! outcome, dead letters by reason code, and the consumer lag per partition.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use crunch_domain::{SelectionMessage, SelectionOp};
use crunch_service::metrics::ConsumerMetrics;
use crunch_service::{DbArgs, KafkaArgs};
use crunch_store::hotels::SelectionChange;
use crunch_bus::kafka::{DeadLetters, Received, SelectionConsumer};
use futures::StreamExt;

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address of the health endpoints (`/healthz`, `/readyz`, `/metrics`).
    #[arg(long, env = "CRUNCH_PERSISTER_HEALTH_ADDR", default_value = "127.0.0.1:8082")]
    pub health_addr: String,
    /// Most messages applied in one transaction.
    #[arg(long, env = "CRUNCH_PERSISTER_BATCH", default_value_t = 5000)]
    pub batch: usize,
    /// Apply database migrations at start-up.
    #[arg(long, env = "CRUNCH_MIGRATE_ON_START", default_value_t = true, action = clap::ArgAction::Set)]
    pub migrate_on_start: bool,
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub kafka: KafkaArgs,
}

/// Consumes until `shutdown` resolves; the batch in hand is finished first.
pub async fn run(cfg: Config, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
    let pool = crunch_store::connect(&cfg.db.pool_config()).context("building the database pool")?;
    let mut migrated = if cfg.migrate_on_start { crunch_service::migrate_on_start(&pool).await } else { tokio::sync::watch::channel(true).1 };
    let kafka_ok = Arc::new(AtomicBool::new(false));
    let health_pool = pool.clone();
    let health_kafka = Arc::clone(&kafka_ok);
    let health_migrated = migrated.clone();
    let metrics = ConsumerMetrics::new("persister", &["topic", "partition"]);
    let handle = crunch_service::spawn_health_server(&cfg.health_addr, move || {
        let pool = health_pool.clone();
        let kafka = health_kafka.load(Ordering::Relaxed);
        let migrated = *health_migrated.borrow();
        Box::pin(async move {
            let database = crunch_service::database_reachable(&pool).await && migrated;
            (database && kafka, serde_json::json!({"database": database, "kafka": kafka}))
        })
    }, metrics.clone())
    .with_context(|| format!("serving health endpoints on {}", cfg.health_addr))?;

    let kcfg = cfg.kafka.kafka_config();
    let mut backoff = crunch_service::Backoff::new(Duration::from_millis(500), Duration::from_secs(10));
    while let Err(e) = crunch_bus::kafka::ensure_topics(&kcfg).await {
        tracing::warn!(error = %e, "Kafka topics not ready; retrying");
        backoff.wait().await;
    }
    let topics = crunch_bus::kafka::TopicGuard::new(kcfg.clone(), Duration::from_secs(2));
    let dead = DeadLetters::new(&kcfg, Duration::from_secs(10))?;
    tokio::pin!(shutdown);
    tokio::select! {
        _ = &mut shutdown => {
            handle.stop(true).await;
            return Ok(());
        }
        _ = migrated.wait_for(|m| *m) => {}
    }
    // A consumer per stretch of broker availability: after a broker
    // connection failed, a new one rejoins the group once the brokers answer
    // (with a short max.poll.interval, so the rebalance does not wait long
    // for members the restart left behind; crunch_bus::kafka::consumer).
    // Measured with tansu, whose restart loses its data: the old consumer
    // alone resumed in only about two restarts of three. Uncommitted
    // messages are replayed, which changes nothing; a rejoin after a
    // connection failure of a broker that kept its data costs one rebalance.
    'consumers: loop {
        let consumer = Arc::new(SelectionConsumer::subscribe(&kcfg)?);
        let outage = consumer.outage();
        kafka_ok.store(true, Ordering::Relaxed);
        tracing::info!(topic = %kcfg.selections_topic, group = %kcfg.group_id, "consuming selections");
        let _lag = AbortOnDrop(tokio::spawn(watch_lag(Arc::downgrade(&consumer), Arc::clone(&outage), metrics.clone())));
        let mut stream = std::pin::pin!(consumer.messages());
        let mut watch = tokio::time::interval(Duration::from_millis(500));
        loop {
            let first = tokio::select! {
                _ = &mut shutdown => break 'consumers,
                m = stream.next() => m,
                _ = watch.tick() => {
                    if outage.load(Ordering::Relaxed) {
                        kafka_ok.store(false, Ordering::Relaxed);
                        if brokers_back(&consumer, &kcfg).await {
                            tracing::warn!("the Kafka brokers are back after a connection failure: rejoining the group with a new consumer");
                            continue 'consumers;
                        }
                    }
                    continue;
                }
            };
            let Some(first) = first else { break 'consumers };
            let mut batch: Vec<Received> = Vec::new();
            match first {
                Ok(m) => batch.push(m),
                Err(e) => {
                    tracing::warn!(error = %e, "Kafka error");
                    topics.poke();
                    kafka_ok.store(false, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            }
            kafka_ok.store(true, Ordering::Relaxed);
            // Whatever else is already there, up to the batch size.
            while batch.len() < cfg.batch.max(1) {
                match tokio::time::timeout(Duration::from_millis(5), stream.next()).await {
                    Ok(Some(Ok(m))) => batch.push(m),
                    _ => break,
                }
            }
            apply_batch(&pool, &consumer, &dead, &metrics, &batch).await;
        }
    }
    tracing::info!("shutting down");
    handle.stop(true).await;
    Ok(())
}

/// Stores a batch and commits its offsets. While the database is
/// unreachable it retries with backoff (the offsets are not committed before).
/// When the database refuses the batch (a constraint or a value it rejects,
/// decided by error kind), the messages are stored one at a time, and one the
/// database refuses [`REFUSALS`] times in a row is dead-lettered with its
/// reason: one bad message never stops the topic.
async fn apply_batch(pool: &crunch_store::PgPool, consumer: &SelectionConsumer, dead: &DeadLetters, metrics: &ConsumerMetrics, batch: &[Received]) {
    let mut parsed: Vec<(usize, SelectionMessage)> = Vec::new();
    let mut rejects: Vec<Reject> = Vec::new();
    for (i, m) in batch.iter().enumerate() {
        match m.payload.as_deref().map(serde_json::from_slice::<SelectionMessage>) {
            Some(Ok(msg)) if !msg.hotel_ids.is_empty() => parsed.push((i, msg)),
            Some(Ok(_)) => rejects.push((i, "no_hotel_ids", "the message names no hotel".into())),
            Some(Err(e)) => rejects.push((i, "malformed", e.to_string())),
            None => rejects.push((i, "empty_message", "the message has no payload".into())),
        }
    }
    match store_until_answered(pool, &parsed).await {
        Ok(unknown) => rejects.extend(unknown),
        Err(e) => {
            tracing::warn!(error = %e, messages = parsed.len(), "the database refused a batch of selections; storing its messages one at a time");
            for one in parsed.chunks(1) {
                let mut refusals = 0;
                loop {
                    match store_until_answered(pool, one).await {
                        Ok(unknown) => rejects.extend(unknown),
                        Err(e) => {
                            refusals += 1;
                            if refusals < REFUSALS {
                                tokio::time::sleep(Duration::from_millis(100)).await;
                                continue;
                            }
                            rejects.push((one[0].0, "refused_by_database", e));
                        }
                    }
                    break;
                }
            }
        }
    }
    for (i, code, detail) in &rejects {
        let m = &batch[*i];
        let reason = format!("{code}: {detail}");
        tracing::warn!(%reason, offset = m.offset, "dead-lettering a selection message");
        metrics.dead_letter(code);
        if let Err(e) = dead.send(m, &reason).await {
            tracing::error!(error = %e, "dead-lettering failed; the message is dropped from the topic's flow");
        }
    }
    metrics.messages.with_label_values(&["stored"]).inc_by((batch.len() - rejects.len()) as u64);
    metrics.messages.with_label_values(&["dead_lettered"]).inc_by(rejects.len() as u64);
    if let Err(e) = consumer.commit(batch) {
        tracing::warn!(error = %e, "committing offsets failed; the batch may be replayed (harmless)");
    }
}

/// A message to dead-letter: its index in the batch, a reason code from a
/// fixed set (the metric's label) and the details.
type Reject = (usize, &'static str, String);

/// How often the consumer lag is read from the brokers, and how long one
/// request of a reading may take.
const LAG_EVERY: Duration = Duration::from_secs(1);
const LAG_TIMEOUT: Duration = Duration::from_millis(500);

/// Keeps `consumer_lag{topic,partition}` up to date for the partitions
/// assigned to `consumer` (others drop out), every [`LAG_EVERY`], apart
/// from the consuming loop: the lag keeps being reported while a batch waits
/// for the database, which is when it grows. It holds the consumer only
/// during a reading (of at most [`LAG_TIMEOUT`] per request) and skips
/// readings after a broker connection failed, so a consumer being replaced
/// is dropped, and leaves the group, without waiting for it.
async fn watch_lag(consumer: std::sync::Weak<SelectionConsumer>, outage: Arc<AtomicBool>, metrics: ConsumerMetrics) {
    let mut tick = tokio::time::interval(LAG_EVERY);
    loop {
        tick.tick().await;
        if outage.load(Ordering::Relaxed) {
            continue;
        }
        let Some(c) = consumer.upgrade() else { return };
        match tokio::task::spawn_blocking(move || c.lag(LAG_TIMEOUT)).await {
            Ok(Ok(lags)) => {
                metrics.lag.reset();
                for (topic, partition, lag) in lags {
                    metrics.lag.with_label_values(&[&topic, &partition.to_string()]).set(lag);
                }
            }
            Ok(Err(e)) => tracing::debug!(error = %e, "reading the consumer lag failed"),
            Err(e) => tracing::debug!(error = %e, "the lag task failed"),
        }
    }
}

/// Aborts a background task when dropped (with the consumer it watches).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Times in a row the database may refuse one message before it is
/// dead-lettered (a deadlock or a serialization failure passes on a retry).
const REFUSALS: u32 = 3;

/// Stores selection messages in one transaction, retrying with backoff while
/// the database is unreachable. Returns the messages to dead-letter for
/// unknown hotel ids (their known ids are stored), or why the database
/// refused them.
async fn store_until_answered(pool: &crunch_store::PgPool, msgs: &[(usize, SelectionMessage)]) -> Result<Vec<Reject>, String> {
    let mut backoff = crunch_service::Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    loop {
        let pool = pool.clone();
        let msgs = msgs.to_vec();
        let res = tokio::task::spawn_blocking(move || -> Result<Vec<Reject>, crunch_store::StoreError> {
            let mut conn = pool.get()?;
            let mut ids: Vec<i64> = msgs.iter().flat_map(|(_, m)| m.hotel_ids.iter().copied()).collect();
            ids.sort_unstable();
            ids.dedup();
            let known: std::collections::HashSet<i64> = crunch_store::hotels::existing_hotel_ids(&mut conn, &ids)?.into_iter().collect();
            let mut unknown = Vec::new();
            let mut changes = Vec::new();
            for (i, m) in &msgs {
                let add = m.op == SelectionOp::Add;
                let missing: Vec<i64> = m.hotel_ids.iter().copied().filter(|h| !known.contains(h)).collect();
                if !missing.is_empty() && add {
                    unknown.push((*i, "unknown_hotel_ids", format!("{missing:?} (the message's other hotels were stored)")));
                }
                changes.extend(
                    m.hotel_ids.iter().filter(|h| !add || known.contains(h)).map(|&h| SelectionChange { owner: m.owner_id, hotel_id: h, add, at: m.at }),
                );
            }
            crunch_store::hotels::apply_selections(&mut conn, &changes)?;
            Ok(unknown)
        })
        .await;
        match res {
            Ok(Ok(unknown)) => return Ok(unknown),
            Ok(Err(e)) if e.is_unavailable() => tracing::warn!(error = %e, retry_in = ?backoff.current(), "storing selections failed: database unavailable"),
            Ok(Err(e)) => return Err(e.reason()),
            // A panic while storing counts as a refusal: dead-lettered after
            // its retries, never retried for ever.
            Err(e) => return Err(format!("the storing task failed: {e}")),
        }
        backoff.wait().await;
    }
}

/// Whether the brokers answer again after a connection failure: the topics
/// can be (re)created, or the selections topic's metadata is visible to the
/// old consumer (someone else, the gateway, created it again).
async fn brokers_back(consumer: &SelectionConsumer, kcfg: &crunch_bus::kafka::KafkaConfig) -> bool {
    match tokio::time::timeout(Duration::from_secs(2), crunch_bus::kafka::ensure_topics(kcfg)).await {
        Ok(Ok(())) => return true,
        Ok(Err(e)) => tracing::debug!(error = %e, "Kafka topics not creatable yet"),
        Err(_) => tracing::debug!("creating the Kafka topics timed out"),
    }
    // A blocking call of at most 500 ms (told to the runtime where it can be).
    let ready = || consumer.topic_ready(Duration::from_millis(500));
    match tokio::runtime::Handle::current().runtime_flavor() {
        tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(ready),
        _ => ready(),
    }
}
