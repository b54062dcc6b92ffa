//! The worker's `/healthz` (process up) and `/readyz` (database and broker).

use std::sync::Arc;

use crate::Shared;

pub fn spawn(shared: Arc<Shared>) -> anyhow::Result<actix_web::dev::ServerHandle> {
    let addr = shared.cfg.health_addr.clone();
    crunch_service::spawn_health_server(&addr, move || {
        let shared = Arc::clone(&shared);
        Box::pin(async move {
            let database = crunch_service::database_reachable(&shared.pool).await;
            let broker = shared.bus().is_some();
            (database && broker, serde_json::json!({"database": database, "broker": broker}))
        })
    })
}
