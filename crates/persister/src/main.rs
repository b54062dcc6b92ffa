/// mimalloc: under 2,000 submissions/s, allocation took about 15% of the
/// gateway's CPU with glibc malloc and 8% with mimalloc (perf; docs/benchmarks.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use crunch_persister::Config;

/// Crunch's persister: stores the hotels users select, from the Kafka topic
/// `selections`. Every option can also be set through the
/// environment variable shown (or in `.env`); see .env.template.
#[derive(Parser)]
#[command(name = "crunch-persister", version)]
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
    tracing::info!(database = %crunch_service::redact_url(cfg.db.database_url.expose()), "starting crunch-persister");
    crunch_service::exit_status(crunch_persister::run(cfg, crunch_service::shutdown_signal()).await)
}
