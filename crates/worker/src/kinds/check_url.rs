//! `check_url`: fetch a URL the way a careful client would and report what
//! happened: final status, every redirect hop, timings (DNS, connect, TLS,
//! first byte, total), content type and length, the TLS certificate's expiry,
//! or a classified error (`dns`, `connect`, `timeout`, `tls`,
//! `too_many_redirects`, `body_too_large`, `blocked`, `http`).
//!
//! Through the SSRF-guarded client ([`crate::guarded_http`]), on the tokio
//! runtime (I/O), never on rayon.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crunch_compute::Control;
use crunch_domain::{CheckAnswer, CheckFailure, CheckNoAnswer, CheckTotal, CheckUrlParams, CheckUrlResult};
use serde_json::json;

use super::{succeeded, Kernel, Kind, Outcome};
use crate::guarded_http::{fetch, ms, CheckError, IoConfig};

impl Kind for CheckUrlParams {
    const KERNEL: Kernel<Self> = Kernel::Io { run: |p, ctl, shared| Box::pin(run(p, ctl, Arc::clone(&shared.io))), abortable: true };
}

/// Runs the check, retrying what `retry_on` names (network errors and
/// timeouts, 5xx answers) with exponential backoff from 200 ms.
async fn run(p: CheckUrlParams, ctl: Control, cfg: Arc<IoConfig>) -> Outcome {
    let started = Instant::now();
    let mut attempt = 0;
    loop {
        attempt += 1;
        if let Err(stop) = ctl.check() {
            return super::stopped(stop, started.elapsed().as_millis() as u64, json!({"attempts": attempt - 1}));
        }
        let timeout = Duration::from_millis(p.timeout_ms());
        let outcome = match tokio::time::timeout(timeout, fetch(p.url(), p.method(), &cfg, false)).await {
            Ok(r) => r,
            Err(_) => Err(CheckError::new("timeout", format!("no complete answer within {} ms", p.timeout_ms()))),
        };
        match outcome {
            Ok(f) if f.status >= 500 && p.retry_on().server_error && attempt <= p.retries() => {
                ctl.progress(attempt as f64 / (p.retries() as f64 + 1.0));
                tokio::time::sleep(Duration::from_millis(200 << (attempt - 1).min(5))).await;
            }
            Ok(f) => {
                return succeeded(CheckUrlResult::Answered(CheckAnswer {
                    url: p.url().as_str().to_owned(),
                    final_url: f.final_url.as_str().to_owned(),
                    ok: (200..300).contains(&f.status),
                    status: f.status,
                    redirects: f.hops,
                    timings_ms: f.timings,
                    content_type: f.content_type,
                    content_length: f.content_length,
                    tls_cert_expires_at: f.cert_expiry.and_then(|t| chrono::DateTime::from_timestamp(t, 0)).map(|t| t.to_rfc3339()),
                    error: None,
                    attempts: attempt,
                }));
            }
            Err(e) if e.retryable() && p.retry_on().network && attempt <= p.retries() => {
                ctl.progress(attempt as f64 / (p.retries() as f64 + 1.0));
                tokio::time::sleep(Duration::from_millis(200 << (attempt - 1).min(5))).await;
            }
            Err(e) => {
                // The check itself worked: its finding is the classified error.
                return succeeded(CheckUrlResult::NoAnswer(CheckNoAnswer {
                    url: p.url().as_str().to_owned(),
                    ok: false,
                    error: CheckFailure { kind: e.kind.to_owned(), message: e.message },
                    attempts: attempt,
                    timings_ms: CheckTotal { total: ms(started.elapsed()) },
                }));
            }
        }
    }
}
