//! The dashboard in a real browser (Debian's headless Chromium driven by
//! playwright-core, `crates/e2e/browser/dashboard.mjs`), and the demo traffic
//! generator (one per deployment, whatever the number of gateway replicas).

use std::path::PathBuf;
use std::time::Duration;

use crunch_e2e::{create_key, fresh_database, gateway_config, HotelSite, Options, TestEnv};
use diesel::sql_types::BigInt;
use diesel::RunQueryDsl;
use serde_json::{json, Value};

type R = anyhow::Result<()>;

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_works_in_headless_chromium() -> R {
    let browser_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("browser");
    anyhow::ensure!(
        browser_dir.join("node_modules/playwright-core").exists(),
        "playwright-core is missing: run `npm ci` in crates/e2e/browser (scripts/test.sh does)"
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    anyhow::ensure!(std::path::Path::new(&chromium).exists(), "{chromium} is missing: apt-get install chromium (scripts/test.sh does)");

    let site = HotelSite::start(Duration::from_millis(1)).await?;
    let profile_file = crunch_e2e::hotel_profile(json!({"Dubai": "/Hotels-g1-Testville-Hotels.html", "Paris": "/Hotels-g2-Evil-Hotels.html"}))?;
    let mut env = TestEnv::start_with(Options {
        worker_env: vec![
            ("CRUNCH_SSRF_ALLOWLIST".into(), "127.0.0.1/32".into()),
            ("CRUNCH_SCRAPE_PROFILE_FILE".into(), profile_file.display().to_string()),
            ("CRUNCH_SCRAPE_BASE_URL".into(), format!("http://127.0.0.1:{}", site.port)),
            ("CRUNCH_SCRAPE_MIN_INTERVAL_MS".into(), "0".into()),
            ("CRUNCH_SCRAPE_CONCURRENCY".into(), "16".into()),
        ],
        adminer_url: Some("http://127.0.0.1:8088/".into()),
        ..Default::default()
    })
    .await?;
    env.spawn_persister()?;

    let artifacts = workspace_root().join("artifacts/dashboard");
    let status = tokio::time::timeout(
        Duration::from_secs(240),
        tokio::process::Command::new("node")
            .arg(browser_dir.join("dashboard.mjs"))
            .current_dir(&browser_dir)
            .env("BASE_URL", &env.base)
            .env("API_KEY", &env.key)
            .env("SITE_URL", format!("http://127.0.0.1:{}/Hotels-g1-Testville-Hotels.html", site.port))
            .env("ARTIFACTS", &artifacts)
            .env("CHROMIUM", &chromium)
            .kill_on_drop(true)
            .status(),
    )
    .await??;
    anyhow::ensure!(status.success(), "the browser test failed ({status}); screenshots in {}", artifacts.display());

    // What the browser did is in the database: 29 + 3 selections of this key.
    let mut db = env.db()?;
    let rows: Vec<Count> = diesel::sql_query("SELECT count(*) AS n FROM selections").load(&mut db)?;
    assert_eq!(rows[0].n, 32);
    for shot in ["01-no-key", "03-factorized", "04-inline-errors", "05-gene-file", "07-selected", "09-hostile-hotels"] {
        assert!(artifacts.join(format!("{shot}.png")).exists(), "screenshot {shot}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_demo_generator_per_deployment_whatever_the_replicas() -> R {
    let db_url = fresh_database()?;
    let amqp = crunch_e2e::amqp_url();
    let namespace = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let mut db = <diesel::PgConnection as diesel::Connection>::establish(&db_url)?;
    crunch_store::run_migrations(&mut db)?;
    let (mut ports, mut gateways) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        let mut cfg = gateway_config(&db_url, &amqp, &namespace, 64 * 1024);
        cfg.demo.demo_interval_secs = 0.25;
        cfg.demo.demo_key_name = "demo-owner".into();
        cfg.adminer_url = Some("http://127.0.0.1:8088/".into());
        let app = crunch_e2e::Gateway::start(cfg).await?;
        ports.push(app.port);
        gateways.push(app);
    }
    // No key with that name yet: nothing is submitted (and nothing breaks).
    tokio::time::sleep(Duration::from_millis(800)).await;
    let before: Vec<Count> = diesel::sql_query("SELECT count(*) AS n FROM jobs").load(&mut db)?;
    assert_eq!(before[0].n, 0);

    let key = create_key(&db_url, "demo-owner")?;
    let started = std::time::Instant::now();
    let mut made = 0;
    while made < 8 && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let rows: Vec<Count> = diesel::sql_query("SELECT count(*) AS n FROM jobs WHERE kind = 'factorize'").load(&mut db)?;
        made = rows[0].n;
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert!(made >= 8, "only {made} demo jobs in {elapsed:.1} s");
    // One generator ticks at most once per 250 ms (a late tick delays the
    // next, never bursts), so it cannot outrun elapsed / 0.25; two replicas
    // generating would make about twice that.
    assert!(made as f64 <= elapsed / 0.25 + 2.0, "{made} demo jobs in {elapsed:.2} s at one per 250 ms: more than one generator");
    // Exactly one session holds the generator's lock.
    let k = crunch_gateway::demo::LOCK_KEY;
    let holders: Vec<Count> = diesel::sql_query(
        "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         AND classid::bigint = $1 AND objid::bigint = $2",
    )
    .bind::<BigInt, _>(k >> 32)
    .bind::<BigInt, _>(k & 0xffff_ffff)
    .load(&mut db)?;
    assert_eq!(holders[0].n, 1, "holders of the demo generator's lock");

    // The demo jobs belong to the named key, and the dashboard is told about the generator.
    let http = reqwest::Client::new();
    let page: Value = http.get(format!("http://127.0.0.1:{}/api/v1/jobs?kind=factorize&limit=100", ports[1])).bearer_auth(&key).send().await?.json().await?;
    assert!(page["items"].as_array().is_some_and(|a| a.len() >= 6), "{page}");
    let cfg: Value = http.get(format!("http://127.0.0.1:{}/api/v1/ui-config", ports[0])).send().await?.json().await?;
    assert_eq!(cfg["demo"], json!({"enabled": true, "interval_secs": 0.25, "key_name": "demo-owner"}));
    assert_eq!(cfg["adminer_url"], "http://127.0.0.1:8088/");
    assert_eq!(cfg["limits"]["factorize_max_digits"], 300);
    assert_eq!(cfg["limits"]["primes_count_max_width"], "18446744073709551615");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_assets_are_embedded_with_a_strict_csp() -> R {
    let env = TestEnv::start_with(Options { workers: 0, ..Default::default() }).await?;
    for (path, ty) in [("/", "text/html"), ("/assets/app.js", "text/javascript"), ("/assets/app.css", "text/css")] {
        let r = env.http.get(env.url(path)).send().await?;
        assert_eq!(r.status(), 200, "{path}");
        let csp = r.headers()["content-security-policy"].to_str()?.to_owned();
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe"), "{csp}");
        assert!(r.headers()["content-type"].to_str()?.starts_with(ty), "{path}");
        let body = r.text().await?;
        if path == "/" {
            assert!(!body.contains("<script>") && !body.contains("onclick=") && !body.contains("src=\"http") && !body.contains("href=\"http"), "no inline script, no external asset");
        }
    }
    let r = env.http.get(env.url("/assets/../Cargo.toml")).send().await?;
    assert_eq!(r.status(), 404);
    let r = env.http.get(env.url("/assets/nope.js")).send().await?;
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await?["error"]["code"], "not_found");

    // A known path with a method it does not take: 405 with Allow, as JSON.
    for (method, path, allow) in [
        ("DELETE", "/api/v1/jobs".to_owned(), "GET, POST"),
        ("PATCH", format!("/api/v1/jobs/{}", uuid::Uuid::new_v4()), "GET, DELETE"),
        ("TRACE", "/readyz".to_owned(), "GET"),
        ("POST", "/".to_owned(), "GET"),
    ] {
        let r = env.http.request(reqwest::Method::from_bytes(method.as_bytes())?, env.url(&path)).bearer_auth(&env.key).send().await?;
        assert_eq!(r.status(), 405, "{method} {path}");
        assert_eq!(r.headers()["allow"].to_str()?, allow, "{method} {path}");
        assert_eq!(r.json::<Value>().await?["error"]["code"], "method_not_allowed");
    }
    let r = env.http.delete(env.url("/api/v1/nope")).send().await?;
    assert_eq!(r.status(), 404);
    Ok(())
}
