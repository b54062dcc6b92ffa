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
    let mut backoff = Backoff::new(RETRY_FIRST, Duration::from_secs(5));
    while !attempt().await {
        backoff.wait().await;
    }
}

/// Pauses between the attempts of something that may fail for a while (a
/// connection, a database call): `first`, doubling up to `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Self {
        Self { first, next: first, max }
    }

    /// The pause the next [`Backoff::wait`] takes.
    pub fn current(&self) -> Duration {
        self.next
    }

    /// Sleeps for the current pause and doubles the next one.
    pub async fn wait(&mut self) {
        let pause = self.next;
        self.next = (self.next * 2).min(self.max);
        tokio::time::sleep(pause).await;
    }

    /// Back to the first pause (after a success).
    pub fn reset(&mut self) {
        self.next = self.first;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn backoff_doubles_up_to_its_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(1), Duration::from_millis(4));
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(b.current().as_millis());
            b.wait().await;
        }
        assert_eq!(seen, [1, 2, 4, 4]);
        b.reset();
        assert_eq!(b.current(), Duration::from_millis(1));
    }
}
