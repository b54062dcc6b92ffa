/// mimalloc: under 2,000 submissions/s, allocation took about 15% of the
/// gateway's CPU with glibc malloc and 8% with mimalloc (perf; docs/benchmarks.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};
use crunch_gateway::cli::{self, KeysCommand};
use crunch_gateway::{Application, Config};

/// Crunch's API gateway: REST API, Swagger UI, WebSocket events, dashboard.
/// Every option can also be set through the environment variable shown (or in
/// `.env`); see .env.template.
#[derive(Parser)]
#[command(name = "crunch-gateway", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    config: Config,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
}

fn main() -> std::process::ExitCode {
    crunch_service::disable_transparent_huge_pages();
    crunch_service::load_environment();
    let cli = Cli::parse();
    crunch_service::init_tracing("info,crunch::http=info");
    crunch_service::exit_status(run(cli))
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => cli::migrate(&cli.config.core.db),
        Command::Keys(cmd) => cli::keys(&cli.config.core.db, cmd),
        Command::Serve => actix_web::rt::System::new().block_on(async move {
            let cfg = cli.config;
            cfg.core.log_start("crunch-gateway");
            tracing::info!(http_addr = %cfg.http_addr, max_body_bytes = cfg.max_body_bytes, "gateway settings");
            let app = Application::build(cfg).await?;
            tracing::info!(port = app.port(), "listening");
            app.run_until_stopped().await?;
            Ok(())
        }),
    }
}
