//! Demo traffic: a server-side generator that submits a random factorization
//! job every few seconds, so a fresh dashboard has something to show.
//!
//! One generator per deployment, whatever the number of gateway replicas or
//! open browser tabs: the replica holding a
//! PostgreSQL session advisory lock generates; if it dies its connection
//! closes, the lock is released and another replica takes over at its next
//! tick. The jobs belong to a named API key (`CRUNCH_DEMO_KEY_NAME`), so they
//! show up on the dashboard of whoever uses that key.

use std::time::Duration;

use actix_web::web;
use clap::Args;
use crunch_domain::{FactorizeParams, JobSpec, Params};
use rand::Rng;
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

/// Session advisory lock of the demo generator ("crunchdm"): the replica
/// whose connection holds it is the deployment's one generator.
pub const LOCK_KEY: i64 = 0x6372_756e_6368_646d;

/// Demo traffic settings.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Seconds between two demo factorization jobs; 0 switches the generator
    /// off (the default; scripts/dev-up.sh switches it on).
    #[arg(long, env = "CRUNCH_DEMO_INTERVAL_SECS", default_value_t = 0.0)]
    pub demo_interval_secs: f64,
    /// Name of the API key the demo jobs belong to (see `keys list`).
    #[arg(long, env = "CRUNCH_DEMO_KEY_NAME", default_value = "admin")]
    pub demo_key_name: String,
    /// Most decimal digits of a demo number (at least 2).
    #[arg(long, env = "CRUNCH_DEMO_MAX_DIGITS", default_value_t = 20)]
    pub demo_max_digits: u32,
}

impl Default for DemoArgs {
    fn default() -> Self {
        Self { demo_interval_secs: 0.0, demo_key_name: "admin".into(), demo_max_digits: 20 }
    }
}

/// What the dashboard shows of the generator.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DemoInfo {
    pub enabled: bool,
    pub interval_secs: f64,
    pub key_name: String,
}

impl DemoArgs {
    pub fn info(&self) -> DemoInfo {
        DemoInfo { enabled: self.enabled(), interval_secs: self.demo_interval_secs, key_name: self.demo_key_name.clone() }
    }

    fn enabled(&self) -> bool {
        self.demo_interval_secs.is_finite() && self.demo_interval_secs > 0.0
    }
}

/// A random positive integer of 2..=`max_digits` decimal digits.
fn demo_number(max_digits: u32) -> String {
    let mut rng = rand::thread_rng();
    let digits = rng.gen_range(2..=max_digits.max(2));
    let mut s = String::with_capacity(digits as usize);
    s.push(char::from(b'1' + rng.gen_range(0..9u8)));
    for _ in 1..digits {
        s.push(char::from(b'0' + rng.gen_range(0..10u8)));
    }
    s
}

/// Starts the generator (when enabled) as a background task of this replica.
pub fn spawn(state: web::Data<AppState>, args: DemoArgs) {
    if !args.enabled() {
        return;
    }
    let interval = Duration::from_secs_f64(args.demo_interval_secs.max(0.05));
    tracing::info!(interval = ?interval, key = %args.demo_key_name, "demo traffic generator on");
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The pooled connection that holds the lock while this replica leads.
        let mut leader: Option<crunch_store::PooledConn> = None;
        let mut warned = false;
        loop {
            ticker.tick().await;
            let pool = state.pool.clone();
            let name = args.demo_key_name.clone();
            let held = leader.take();
            let outcome = tokio::task::spawn_blocking(move || -> anyhow::Result<(Option<crunch_store::PooledConn>, Option<uuid::Uuid>)> {
                let mut conn = match held {
                    // Still ours if the connection is alive.
                    Some(mut c) => match crunch_store::ping(&mut c) {
                        Ok(()) => c,
                        Err(_) => return Ok((None, None)),
                    },
                    None => {
                        let mut c = pool.get()?;
                        if !crunch_store::try_session_lock(&mut c, LOCK_KEY)? {
                            return Ok((None, None));
                        }
                        c
                    }
                };
                let owner = crunch_store::keys::find_active_by_name(&mut conn, &name)?.map(|k| k.id);
                Ok((Some(conn), owner))
            })
            .await;
            let owner = match outcome {
                Ok(Ok((conn, owner))) => {
                    leader = conn;
                    if leader.is_none() {
                        continue;
                    }
                    owner
                }
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "demo generator: database unavailable");
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "demo generator task failed");
                    continue;
                }
            };
            let Some(owner) = owner else {
                if !warned {
                    tracing::warn!(key = %args.demo_key_name, "demo generator: no active API key with this name; nothing submitted");
                    warned = true;
                }
                continue;
            };
            warned = false;
            let params = serde_json::json!({ "n": demo_number(args.demo_max_digits) });
            let spec = match FactorizeParams::parse(&params, &state.limits).map(JobSpec::Factorize) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "demo generator: number refused by the limits");
                    continue;
                }
            };
            if let Err(e) = crate::routes::jobs::submit_spec(&state, owner, spec, true).await {
                tracing::debug!(error = %e, "demo generator: submission failed");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_numbers_have_the_allowed_digits_and_no_leading_zero() {
        for _ in 0..1000 {
            let n = demo_number(20);
            assert!((2..=20).contains(&n.len()), "{n}");
            assert!(!n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit()), "{n}");
        }
        assert_eq!(demo_number(0).len(), 2);
    }
}
