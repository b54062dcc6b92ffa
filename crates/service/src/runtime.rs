//! The process around a service: memory settings, logs, signals, exit.

/// Turns transparent huge pages off for this process (Linux; elsewhere a
/// no-op). Call first in `main`. mimalloc, the allocator of every Crunch
/// binary, hands pages it has not used for 10 ms back to the kernel and
/// faults them in again when it needs them; where THP is on (Debian's default
/// is `madvise`, and mimalloc asks for it), each such fault zeroes a whole
/// 2 MiB page. In the worker that was 5% of its CPU under a drain of quick
/// jobs (`perf record`: `clear_page_erms` under `do_huge_pmd_anonymous_page`),
/// and the drain ran about 13% faster without it (docs/benchmarks.md).
pub fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        eprintln!("warning: could not turn transparent huge pages off: {e}");
    }
}

/// Logs as text (default) or JSON (`CRUNCH_LOG_FORMAT=json`), filtered by `RUST_LOG`.
pub fn init_tracing(default_filter: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let json = std::env::var("CRUNCH_LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// The end of a service's `main`: a fatal error is logged at once through the
/// service's log (JSON in the stack) and the process exits with status 1.
pub fn exit_status(result: anyhow::Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "fatal error; exiting");
            std::process::ExitCode::FAILURE
        }
    }
}
