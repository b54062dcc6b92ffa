//! The worker's `/healthz` (process up), `/readyz` (database and broker) and
//! `/metrics`: dead letters by reason, and the backlog of each queue of its
//! namespace (`crunch_worker_consumer_lag{queue}`, the dead-letter queue
//! included), read from the broker every [`LAG_EVERY`].

use std::sync::Arc;
use std::time::Duration;

use crate::Shared;

pub const LAG_EVERY: Duration = Duration::from_secs(5);

pub fn spawn(shared: Arc<Shared>) -> anyhow::Result<actix_web::dev::ServerHandle> {
    let addr = shared.cfg.health_addr.clone();
    tokio::spawn(watch_lag(Arc::clone(&shared)));
    let metrics = shared.metrics.clone();
    crunch_service::spawn_health_server(
        &addr,
        move || {
            let shared = Arc::clone(&shared);
            Box::pin(async move {
                let database = crunch_service::database_reachable(&shared.pool).await;
                let broker = shared.bus().is_some();
                (database && broker, serde_json::json!({"database": database, "broker": broker}))
            })
        },
        metrics,
    )
}

async fn watch_lag(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(LAG_EVERY);
    while !shared.shutting_down() {
        tick.tick().await;
        let Some(bus) = shared.bus() else { continue };
        for (queue, depth) in bus.queue_depths(bus.config().queues()).await {
            shared.metrics.lag.with_label_values(&[&queue]).set(i64::from(depth));
        }
    }
}
