//! Start-up: migrations applied in the background until the database
//! answers, and the retry helper they use.

use std::time::Duration;

/// Applies pending migrations at start-up (under the store's advisory lock).
/// When the database cannot be reached the service still starts: the
/// migrations are retried in the background with backoff (up to 5 s apart),
/// and the receiver turns true once they are applied. Until then services
/// report not ready and take no work: in a fresh deployment they often start
/// before PostgreSQL accepts connections, and none may run on a schema it
/// has not migrated.
pub async fn migrate_on_start(pool: &crunch_store::PgPool) -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    if migrate_once(pool).await {
        let _ = tx.send(true);
        return rx;
    }
    let pool = pool.clone();
    tokio::spawn(async move {
        tokio::time::sleep(RETRY_FIRST).await;
        retry_until(|| migrate_once(&pool)).await;
        let _ = tx.send(true);
    });
    rx
}

/// The first pause of [`retry_until`]; it doubles up to 5 s.
pub const RETRY_FIRST: Duration = Duration::from_millis(250);

/// Runs `attempt` until it says it succeeded, pausing between attempts
/// ([`RETRY_FIRST`], doubling up to 5 s). The attempt logs its own failure.
pub async fn retry_until<F, Fut>(mut attempt: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut delay = RETRY_FIRST;
    while !attempt().await {
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

async fn migrate_once(pool: &crunch_store::PgPool) -> bool {
    let p = pool.clone();
    let migrated = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<String>> {
        let mut conn = p.get()?;
        Ok(crunch_store::run_migrations(&mut conn)?)
    })
    .await
    .map_err(anyhow::Error::from)
    .and_then(|r| r);
    match migrated {
        Ok(applied) => {
            if !applied.is_empty() {
                tracing::info!(?applied, "migrations applied");
            }
            true
        }
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "migrations not applied yet (database unreachable?); retrying");
            false
        }
    }
}
