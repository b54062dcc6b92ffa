//! Settings: the layered environment (`.env`, `*_FILE` secrets) and the
//! argument groups the services share.

use std::time::Duration;

use clap::Args;
use crunch_bus::BusConfig;
use crunch_domain::Limits;
use crunch_store::PoolConfig;

/// Variables whose `*_FILE` form is honoured (other programs' `*_FILE`
/// variables in the environment are left alone).
const SECRET_PREFIXES: &[&str] = &["CRUNCH_", "DATABASE_", "AMQP_", "KAFKA_", "S3_"];

/// Loads `.env` and resolves `*_FILE` variables. Call first in `main`, before
/// parsing flags (clap reads the environment this fills).
pub fn load_environment() {
    let path = std::env::var("CRUNCH_ENV_FILE").unwrap_or_else(|_| ".env".to_owned());
    // A missing .env is normal; real variables always win over it.
    let _ = dotenvy::from_path(&path);
    let file_vars: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.ends_with("_FILE") && SECRET_PREFIXES.iter().any(|p| k.starts_with(p)))
        .collect();
    for (key, path) in file_vars {
        let target = key.trim_end_matches("_FILE");
        if target.is_empty() || target == "CRUNCH_ENV" || std::env::var_os(target).is_some() {
            continue;
        }
        match std::fs::read_to_string(&path) {
            // Called at the start of main, before any other thread exists.
            Ok(v) => std::env::set_var(target, v.trim_end_matches(['\n', '\r'])),
            Err(e) => eprintln!("warning: {key}={path}: {e}"),
        }
    }
}


/// PostgreSQL settings.
#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// PostgreSQL URL (or DATABASE_URL_FILE naming a file that holds it).
    #[arg(long, env = "DATABASE_URL", default_value = "postgres://postgres@127.0.0.1:5432/crunch", hide_env_values = true)]
    pub database_url: crunch_domain::Secret,
    /// Connections in the pool.
    #[arg(long, env = "CRUNCH_DB_POOL_SIZE", default_value_t = 16)]
    pub db_pool_size: u32,
    /// Longest wait for a database connection, in ms (then 503).
    #[arg(long, env = "CRUNCH_DB_TIMEOUT_MS", default_value_t = 1500)]
    pub db_timeout_ms: u64,
}

impl DbArgs {
    pub fn pool_config(&self) -> PoolConfig {
        PoolConfig {
            url: self.database_url.expose().to_owned(),
            max_size: self.db_pool_size,
            connect_timeout: Duration::from_millis(self.db_timeout_ms),
        }
    }
}

/// RabbitMQ settings.
#[derive(Debug, Clone, Args)]
pub struct AmqpArgs {
    /// RabbitMQ URL (or AMQP_URL_FILE naming a file that holds it).
    #[arg(long, env = "AMQP_URL", default_value = "amqp://guest:guest@127.0.0.1:5672/%2f", hide_env_values = true)]
    pub amqp_url: crunch_domain::Secret,
    /// Prefix of every exchange and queue name.
    #[arg(long, env = "CRUNCH_AMQP_NAMESPACE", default_value = "crunch")]
    pub amqp_namespace: String,
    /// Deliveries of one job message before RabbitMQ dead-letters it (on the
    /// quick queue: runs of the job before the worker dead-letters it).
    #[arg(long, env = "CRUNCH_DELIVERY_LIMIT", default_value_t = 5)]
    pub delivery_limit: i64,
    /// Longest wait for a publisher confirm, in ms (then 503).
    #[arg(long, env = "CRUNCH_CONFIRM_TIMEOUT_MS", default_value_t = 3000)]
    pub confirm_timeout_ms: u64,
    /// Delete idle queues after this many ms (for tests; 0 = never).
    #[arg(long, env = "CRUNCH_QUEUE_EXPIRES_MS", default_value_t = 0)]
    pub queue_expires_ms: u64,
}

impl AmqpArgs {
    pub fn bus_config(&self) -> BusConfig {
        BusConfig {
            url: self.amqp_url.expose().to_owned(),
            namespace: self.amqp_namespace.clone(),
            delivery_limit: self.delivery_limit,
            confirm_timeout: Duration::from_millis(self.confirm_timeout_ms),
            queue_expires: (self.queue_expires_ms > 0).then(|| Duration::from_millis(self.queue_expires_ms)),
        }
    }
}

/// Kafka settings (gateway: produces selections; persister: consumes them).
#[derive(Debug, Clone, Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers (comma-separated host:port).
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub kafka_brokers: String,
    /// Topic of selection changes.
    #[arg(long, env = "CRUNCH_KAFKA_TOPIC_SELECTIONS", default_value = "selections")]
    pub kafka_topic_selections: String,
    /// Topic of selection messages that cannot be stored, with the reason.
    #[arg(long, env = "CRUNCH_KAFKA_TOPIC_DEAD", default_value = "selections.dead")]
    pub kafka_topic_dead: String,
    /// Consumer group of the persisters.
    #[arg(long, env = "CRUNCH_KAFKA_GROUP", default_value = "crunch-persister")]
    pub kafka_group: String,
    /// Partitions of the selections topic when it is created.
    #[arg(long, env = "CRUNCH_KAFKA_PARTITIONS", default_value_t = 3)]
    pub kafka_partitions: i32,
    /// Replicas of each topic when it is created: 1 with one broker; with
    /// three brokers and `min.insync.replicas` 2, use 3 (every message is
    /// produced with acks=all).
    #[arg(long, env = "CRUNCH_KAFKA_REPLICATION", default_value_t = 1)]
    pub kafka_replication: i32,
    /// Longest wait for the broker to acknowledge a produced message, in ms (then 503).
    #[arg(long, env = "CRUNCH_KAFKA_PRODUCE_TIMEOUT_MS", default_value_t = 5000)]
    pub kafka_produce_timeout_ms: u64,
    /// A persister silent this long (no heartbeat) leaves the consumer group, in ms.
    #[arg(long, env = "CRUNCH_KAFKA_SESSION_TIMEOUT_MS", default_value_t = 6000)]
    pub kafka_session_timeout_ms: u32,
    /// Longest a persister may take over one batch before the group
    /// rebalances without it, in ms; also the longest a rebalance waits for
    /// members (after a broker restart: for members that no longer exist).
    #[arg(long, env = "CRUNCH_KAFKA_MAX_POLL_INTERVAL_MS", default_value_t = 8000)]
    pub kafka_max_poll_interval_ms: u32,
}

impl KafkaArgs {
    pub fn kafka_config(&self) -> crunch_bus::kafka::KafkaConfig {
        crunch_bus::kafka::KafkaConfig {
            brokers: self.kafka_brokers.clone(),
            selections_topic: self.kafka_topic_selections.clone(),
            dead_letter_topic: self.kafka_topic_dead.clone(),
            group_id: self.kafka_group.clone(),
            partitions: self.kafka_partitions,
            replication: self.kafka_replication,
            session_timeout_ms: self.kafka_session_timeout_ms,
            max_poll_interval_ms: self.kafka_max_poll_interval_ms,
        }
    }
}

/// Input limits (shared by the gateway, which refuses, and the worker, which
/// dead-letters).
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Most decimal digits accepted for factorize.n.
    #[arg(long, env = "CRUNCH_FACTORIZE_MAX_DIGITS", default_value_t = Limits::DEFAULT_FACTORIZE_MAX_DIGITS)]
    pub factorize_max_digits: usize,
    /// Widest range (to - from) accepted for primes in list mode.
    #[arg(long, env = "CRUNCH_PRIMES_LIST_MAX_WIDTH", default_value_t = Limits::DEFAULT_PRIMES_LIST_MAX_WIDTH)]
    pub primes_list_max_width: u64,
    /// Widest range (to - from) accepted for primes in count mode.
    #[arg(long, env = "CRUNCH_PRIMES_COUNT_MAX_WIDTH", default_value_t = Limits::DEFAULT_PRIMES_COUNT_MAX_WIDTH)]
    pub primes_count_max_width: u64,
    /// Most list pages one scrape_hotels job may ask for.
    #[arg(long, env = "CRUNCH_SCRAPE_MAX_PAGES", default_value_t = Limits::DEFAULT_SCRAPE_MAX_PAGES)]
    pub scrape_max_pages: u32,
}

impl LimitArgs {
    pub fn limits(&self) -> Limits {
        Limits {
            factorize_max_digits: self.factorize_max_digits,
            primes_list_max_width: self.primes_list_max_width,
            primes_count_max_width: self.primes_count_max_width,
            scrape_max_pages: self.scrape_max_pages,
        }
    }
}

/// What every service that runs jobs shares: the database, the broker, the
/// input limits, and whether to migrate at start-up.
#[derive(Debug, Clone, Args)]
pub struct CoreArgs {
    /// Apply database migrations at start-up.
    #[arg(long, env = "CRUNCH_MIGRATE_ON_START", default_value_t = true, action = clap::ArgAction::Set)]
    pub migrate_on_start: bool,
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub amqp: AmqpArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
}

impl CoreArgs {
    /// Logs the effective settings (passwords redacted).
    pub fn log_start(&self, service: &str) {
        tracing::info!(
            database = %redact_url(self.db.database_url.expose()),
            amqp = %redact_url(self.amqp.amqp_url.expose()),
            namespace = %self.amqp.amqp_namespace,
            limits = ?self.limits.limits(),
            "starting {service}"
        );
    }

    /// The database pool, and whether its migrations are applied
    /// ([`migrate_on_start`]; true at once when not asked to migrate).
    pub async fn pool(&self) -> anyhow::Result<(crunch_store::PgPool, tokio::sync::watch::Receiver<bool>)> {
        let pool = crunch_store::connect(&self.db.pool_config())?;
        let migrated = if self.migrate_on_start { crate::startup::migrate_on_start(&pool).await } else { tokio::sync::watch::channel(true).1 };
        Ok((pool, migrated))
    }
}

/// Redacts the password of a URL for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redact_url_hides_passwords_only() {
        assert_eq!(super::redact_url("amqp://guest:guest@h:5672/%2f"), "amqp://guest:***@h:5672/%2f");
        assert_eq!(super::redact_url("postgres://postgres@h/db"), "postgres://postgres@h/db");
    }
}
