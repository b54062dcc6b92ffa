//! Scrape speed: 10 list pages and 300 detail pages from the generated hotel
//! site with 100 ms latency per response, through the worker's scrape kernel
//! and into PostgreSQL. Used by `scripts/bench-scrape.sh`; prints table rows.
//!
//!   crunch-bench-scrape [CONCURRENCY...]

use std::sync::Arc;
use std::time::{Duration, Instant};

use crunch_compute::Control;
use crunch_domain::{Limits, Params, ScrapeHotelsParams};
use crunch_worker::guarded_http::IoConfig;
use crunch_worker::kinds::scrape_hotels::{run, Profile, ScrapeConfig, BUILT_IN_PROFILE};
use crunch_worker::kinds::Outcome;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let concurrencies: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let concurrencies = if concurrencies.is_empty() { vec![8, 32] } else { concurrencies };
    let site = crunch_e2e::HotelSite::start(Duration::from_millis(100)).await?;
    let db = crunch_e2e::fresh_database()?;
    let pool = crunch_store::connect(&crunch_store::PoolConfig { url: db, max_size: 4, connect_timeout: Duration::from_secs(5) })?;
    let mut conn = pool.get()?;
    crunch_store::run_migrations(&mut conn)?;
    drop(conn);
    let io = Arc::new(IoConfig::new(vec!["127.0.0.1/32".parse()?], 5 << 20, 10, None)?);
    let start_url = format!("http://127.0.0.1:{}/Hotels-g1-Testville-Hotels.html", site.port);
    let params = ScrapeHotelsParams::parse(&serde_json::json!({"start_url": start_url, "pages": 10}), &Limits::default())?;
    for c in concurrencies {
        let mut profile: Profile = serde_json::from_str(BUILT_IN_PROFILE)?;
        profile.base_url = format!("http://127.0.0.1:{}", site.port);
        let sc = Arc::new(ScrapeConfig { profile, concurrency: c, min_interval: Duration::ZERO, retries: 1, timeout: Duration::from_secs(5), robots: true, max_crawl_delay: Duration::from_secs(10), max_html_depth: 512, pages_in_flight: Arc::new(tokio::sync::Semaphore::new(64)) });
        let t = Instant::now();
        let out = run(params.clone(), Control::unlimited(), Arc::clone(&io), sc, pool.clone()).await;
        let elapsed = t.elapsed();
        let Outcome::Succeeded(r) = out else { anyhow::bail!("the scrape failed") };
        println!("| {c} | {} | {} | {:.2} |", r["hotels"], r["details_fetched"], elapsed.as_secs_f64());
    }
    Ok(())
}
