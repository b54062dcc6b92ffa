/// mimalloc: under 2,000 submissions/s, allocation took about 15% of the
/// gateway's CPU with glibc malloc and 8% with mimalloc (perf; docs/benchmarks.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use crunch_worker::Config;

/// Crunch's job worker: consumes jobs from RabbitMQ and runs them. Every
/// option can also be set through the environment variable shown (or in
/// `.env`); see .env.template.
#[derive(Parser)]
#[command(name = "crunch-worker", version)]
struct Cli {
    #[command(flatten)]
    config: Config,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    crunch_service::disable_transparent_huge_pages();
    crunch_service::load_environment();
    let cfg = Cli::parse().config;
    crunch_service::init_tracing("info");
    crunch_service::exit_status(serve(cfg).await)
}

async fn serve(cfg: Config) -> anyhow::Result<()> {
    cfg.core.log_start("crunch-worker");
    tracing::info!(prefetch = cfg.queues.prefetch, time_budget_secs = cfg.time_budget_secs, "worker settings");
    let (tx, rx) = tokio::sync::watch::channel(false);
    let grace = std::time::Duration::from_secs(cfg.shutdown_grace_secs);
    let mut worker = tokio::spawn(crunch_worker::run(cfg, rx));
    tokio::select! {
        // The worker ends by itself only on a fatal error (bad settings, no
        // blob storage): the process ends with it.
        res = &mut worker => return res?,
        _ = crunch_service::shutdown_signal() => {}
    }
    tracing::info!("shutting down: no new jobs; waiting for in-flight ones");
    let _ = tx.send(true);
    match tokio::time::timeout(grace, worker).await {
        Ok(res) => res??,
        Err(_) => tracing::warn!("in-flight jobs did not finish in time; their messages return to the queue"),
    }
    Ok(())
}
