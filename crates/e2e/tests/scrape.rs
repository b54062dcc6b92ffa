//! `scrape_hotels` against a generated site in the TripAdvisor layout.

use std::time::Duration;

use crunch_e2e::{HotelSite, Options, TestEnv};
use serde_json::{json, Value};

type R = anyhow::Result<()>;

async fn scrape(env: &TestEnv, params: Value) -> anyhow::Result<Value> {
    let r = env.submit(json!({"kind": "scrape_hotels", "params": params, "fresh": true})).await?;
    anyhow::ensure!(r.status() == 202, "submit: {}", r.status());
    let id = r.json::<Value>().await?["id"].as_str().unwrap_or_default().to_owned();
    let done = env.wait_finished(&id).await?;
    anyhow::ensure!(done["status"] == "succeeded", "{done}");
    Ok(done["result"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_list_and_detail_pages_and_upserts_hotels() -> R {
    let site = HotelSite::start_with_slow_page(Duration::from_millis(5), Some(1011)).await?;
    let profile_file = crunch_e2e::hotel_profile(json!({"Dubai": "/Hotels-g1-Testville-Hotels.html"}))?;
    let env = TestEnv::start_with(Options {
        worker_env: vec![
            ("CRUNCH_SSRF_ALLOWLIST".into(), "127.0.0.1/32".into()),
            ("CRUNCH_SCRAPE_PROFILE_FILE".into(), profile_file.display().to_string()),
            ("CRUNCH_SCRAPE_BASE_URL".into(), format!("http://127.0.0.1:{}", site.port)),
            ("CRUNCH_SCRAPE_MIN_INTERVAL_MS".into(), "0".into()),
            ("CRUNCH_SCRAPE_RETRIES".into(), "1".into()),
            ("CRUNCH_SCRAPE_CONCURRENCY".into(), "16".into()),
            ("CRUNCH_SCRAPE_TIMEOUT_MS".into(), "1000".into()),
        ],
        ..Default::default()
    })
    .await?;
    let r = scrape(&env, json!({"city": "Dubai", "pages": 2})).await?;
    assert_eq!(r["hotels"], 60, "{r}");
    assert_eq!(r["details_fetched"], 57, "{r}");
    assert_eq!(r["skipped_by_robots"], 1, "{r}");
    let failures = r["failures"].as_array().cloned().unwrap_or_default();
    assert_eq!(failures.len(), 2, "{r}");
    let failed = |id: &str| failures.iter().find(|f| f["url"].as_str().unwrap_or("").contains(id)).map(|f| f["error"].as_str().unwrap_or("").to_owned());
    assert_eq!(failed("d1007").as_deref(), Some("HTTP 500"), "{r}");
    assert!(failed("d1011").is_some_and(|e| e.starts_with("timeout")), "the slow page times out: {r}");

    let page: Value = env.http.get(env.url("/api/v1/hotels?q=H01004")).send().await?.json().await?;
    let h = &page["items"][0];
    assert_eq!(h["name"], "H01004");
    assert_eq!(h["description"], "Hotel 1004 by the sea");
    assert_eq!((h["rating"].as_f64(), h["reviews"].as_i64(), h["rank"].as_i64(), h["rank_total"].as_i64(), h["stars"].as_f64()),
               (Some(4.5), Some(2008), Some(5), Some(60), Some(4.0)));
    let odd: Value = env.http.get(env.url("/api/v1/hotels?q=H01031")).send().await?.json().await?;
    assert_eq!(odd["items"][0]["reviews"], 2062, "escaped quotes and fallback anchors: {odd}");
    let bare: Value = env.http.get(env.url("/api/v1/hotels?q=H01005")).send().await?.json().await?;
    assert!(bare["items"][0]["description"].is_null());
    assert_eq!(bare["items"][0]["rating"], 3.5, "the list page's rating stays");
    let dubai: Value = env.http.get(env.url("/api/v1/cities?q=Dubai")).send().await?.json().await?;
    let city = dubai["items"][0]["id"].as_i64().unwrap_or(0);
    let in_city: Value = env.http.get(env.url(&format!("/api/v1/hotels?city={city}&limit=1"))).send().await?.json().await?;
    assert_eq!(in_city["total"], 60);

    // Again: the same hotels are updated, not duplicated.
    let again = scrape(&env, json!({"start_url": format!("http://127.0.0.1:{}/Hotels-g1-Testville-Hotels.html", site.port), "details": false})).await?;
    assert_eq!(again["hotels"], 30);
    let all: Value = env.http.get(env.url("/api/v1/hotels?limit=1")).send().await?.json().await?;
    assert_eq!(all["total"], 60);

    // Another site serving the same ids writes hotels of its own: the
    // profile site's hotels keep their data and their city.
    let other = HotelSite::start(Duration::ZERO).await?;
    let forged = scrape(&env, json!({"start_url": format!("http://127.0.0.1:{}/Hotels-g1-Testville-Hotels.html", other.port), "details": false})).await?;
    assert_eq!(forged["source"], format!("127.0.0.1:{}", other.port), "{forged}");
    let all: Value = env.http.get(env.url("/api/v1/hotels?limit=1")).send().await?.json().await?;
    assert_eq!(all["total"], 90);
    let in_city: Value = env.http.get(env.url(&format!("/api/v1/hotels?city={city}&q=H01004"))).send().await?.json().await?;
    assert_eq!(in_city["total"], 1, "{in_city}");
    assert!(in_city["items"][0]["url"].as_str().unwrap_or("").contains(&format!(":{}/", site.port)), "{in_city}");
    assert_eq!(in_city["items"][0]["source"], "tripadvisor");

    // Any city, through the site's typeahead search: the first city whose
    // name starts with the query, kept in the catalogue (the seeded Lisbon
    // row gains its list page) and asked no more; a new one is added; a
    // city the site does not know fails clearly.
    let lisbon = scrape(&env, json!({"city": "Lisb", "details": false})).await?;
    assert_eq!((lisbon["hotels"].as_u64(), lisbon["city"]["name"].as_str(), lisbon["city"]["country"].as_str(), lisbon["city"]["found_by"].as_str()),
               (Some(10), Some("Lisbon"), Some("Portugal"), Some("site_search")), "{lisbon}");
    let listed: Value = env.http.get(env.url("/api/v1/cities?q=lisbon")).send().await?.json().await?;
    assert_eq!((listed["total"].as_u64(), &listed["items"][0]["id"]), (Some(1), &lisbon["city"]["id"]), "{listed}");
    let in_lisbon: Value = env.http.get(env.url(&format!("/api/v1/hotels?city={}", lisbon["city"]["id"]))).send().await?.json().await?;
    assert_eq!(in_lisbon["total"], 10, "{in_lisbon}");
    let again = scrape(&env, json!({"city": "LISBON", "details": false})).await?;
    assert_eq!((again["city"]["found_by"].as_str(), &again["city"]["id"]), (Some("catalogue"), &lisbon["city"]["id"]), "{again}");
    let reykjavik = scrape(&env, json!({"city": "reykjavik", "details": false})).await?;
    assert_eq!((reykjavik["city"]["name"].as_str(), reykjavik["city"]["country"].as_str()), (Some("Reykjavik"), Some("Iceland")), "{reykjavik}");
    let listed: Value = env.http.get(env.url("/api/v1/cities?q=reyk")).send().await?.json().await?;
    assert_eq!(listed["total"], 1, "{listed}");
    let r = env.submit(json!({"kind": "scrape_hotels", "params": {"city": "Atlantis"}, "fresh": true})).await?;
    let id = r.json::<Value>().await?["id"].as_str().unwrap_or_default().to_owned();
    let done = env.wait_finished(&id).await?;
    assert_eq!((done["status"].as_str(), done["error"]["code"].as_str()), (Some("failed"), Some("unknown_city")), "{done}");
    assert!(done["error"]["message"].as_str().unwrap_or("").contains("found no city for 'Atlantis'"), "{done}");

    // robots.txt: Crunch's own group over `*`, wildcards, the longer Allow,
    // and Crawl-delay between every two requests to the site.
    let rules = "User-agent: *\nDisallow: /\n\nUser-agent: crunch\nDisallow: /*-d10*-Reviews-\nAllow: /Hotel_Review-g1-d1012-\nCrawl-delay: 0.25\n";
    let polite = HotelSite::start_with_robots(Duration::ZERO, None, (200, rules.into())).await?;
    let list = |site: &HotelSite| format!("http://127.0.0.1:{}/Hotels-g1-Testville-Hotels.html", site.port);
    let r = scrape(&env, json!({"start_url": list(&polite)})).await?;
    assert_eq!((r["hotels"].as_u64(), r["details_fetched"].as_u64(), r["skipped_by_robots"].as_u64()), (Some(30), Some(1), Some(29)), "{r}");
    assert_eq!(r["robots"], json!({"status": "followed", "crawl_delay_ms": 250}), "{r}");
    // robots.txt, the list page and one detail page, 250 ms apart.
    assert!(r["elapsed_ms"].as_u64().unwrap_or(0) >= 500, "{r}");
    // A 4xx robots.txt allows everything; a 5xx one forbids everything (RFC
    // 9309), and the job says so; a delay past the worker's limit is refused.
    let absent = HotelSite::start_with_robots(Duration::ZERO, None, (404, String::new())).await?;
    let r = scrape(&env, json!({"start_url": list(&absent), "details": false})).await?;
    assert_eq!((r["hotels"].as_u64(), r["robots"]["status"].as_str()), (Some(30), Some("absent")), "{r}");
    let down = HotelSite::start_with_robots(Duration::ZERO, None, (503, String::new())).await?;
    let slow = HotelSite::start_with_robots(Duration::ZERO, None, (200, "User-agent: *\nCrawl-delay: 3600\n".into())).await?;
    for (site, code) in [(&down, "robots_unreachable"), (&slow, "crawl_delay_too_long")] {
        let r = env.submit(json!({"kind": "scrape_hotels", "params": {"start_url": list(site)}, "fresh": true})).await?;
        let id = r.json::<Value>().await?["id"].as_str().unwrap_or_default().to_owned();
        let done = env.wait_finished(&id).await?;
        assert_eq!((done["status"].as_str(), done["error"]["code"].as_str()), (Some("failed"), Some(code)), "{done}");
    }

    // Bad input.
    for params in [json!({}), json!({"city": "X", "start_url": "http://a.b"}), json!({"city": "Dubai", "pages": 11}), json!({"start_url": "ftp://a.b/"})] {
        let r = env.submit(json!({"kind": "scrape_hotels", "params": params})).await?;
        assert_eq!(r.status(), 400, "{params}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ssrf_guard_applies_to_scrapes_too() -> R {
    let site = HotelSite::start(Duration::from_millis(1)).await?;
    let env = TestEnv::start().await?;
    // The first request (robots.txt) is refused, and the job ends there.
    let r = env.submit(json!({"kind": "scrape_hotels", "params": {"start_url": format!("http://127.0.0.1:{}/Hotels-g1-Testville-Hotels.html", site.port)}})).await?;
    let id = r.json::<Value>().await?["id"].as_str().unwrap_or_default().to_owned();
    let done = env.wait_finished(&id).await?;
    assert_eq!((done["status"].as_str(), done["error"]["code"].as_str()), (Some("failed"), Some("blocked")), "{done}");
    assert!(done["error"]["message"].as_str().unwrap_or("").contains("127.0.0.1"), "{done}");
    Ok(())
}
