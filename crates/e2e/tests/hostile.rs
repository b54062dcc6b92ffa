//! Hostile input, one case per line of docs/security.md: each gets a clear
//! 4xx (or a classified job error), quickly, and the services keep working.
//! The SSRF targets are in url_checks.rs, slow bodies in protection.rs, the
//! gzip bomb and broken gene files in genes.rs.

use std::time::{Duration, Instant};

use crunch_e2e::{HotelSite, Options, TestEnv};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type R = anyhow::Result<()>;

async fn expect(r: reqwest::Response, status: u16, code: &str) -> anyhow::Result<Value> {
    let got = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    anyhow::ensure!(got == status && body["error"]["code"] == code, "wanted {status} {code}, got {got} {body}");
    Ok(body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_numbers_giant_ranges_deep_and_broken_json_get_4xx() -> R {
    // A body limit big enough for a number of a million digits, to reach the
    // digit rule itself; under the default 64 KiB it is a 413.
    let env = TestEnv::start_with(Options { max_body_bytes: 4 << 20, ..Default::default() }).await?;
    let small = TestEnv::start().await?;
    let million = "7".repeat(1_000_000);
    let t = Instant::now();
    let body = expect(env.submit(json!({"kind": "factorize", "params": {"n": million}})).await?, 400, "invalid_params").await?;
    assert!(body["error"]["message"].as_str().unwrap_or("").contains("300"), "{body}");
    expect(small.submit(json!({"kind": "factorize", "params": {"n": million}})).await?, 413, "payload_too_large").await?;
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());

    // Giant and inverted ranges, numbers past 2^64.
    for params in [
        json!({"from": 0, "to": "18446744073709551615", "mode": "list"}),
        json!({"from": 0, "to": "18446744073709551616", "mode": "count"}),
        json!({"from": "1e30", "to": 5, "mode": "count"}),
        json!({"from": 10, "to": 5, "mode": "count"}),
        json!({"from": -1, "to": 5, "mode": "count"}),
    ] {
        expect(env.submit(json!({"kind": "primes", "params": params})).await?, 400, "invalid_params").await?;
    }

    // JSON nested 100,000 deep (the parser's depth limit is 128): 400, no
    // stack overflow; 10^6 deep is over the body limit of the default gateway.
    let deep = format!(r#"{{"kind": "factorize", "params": {{"n": {}1{}}}}}"#, "[".repeat(100_000), "]".repeat(100_000));
    let r = env.http.post(env.url("/api/v1/jobs")).bearer_auth(&env.key).header("content-type", "application/json").body(deep).send().await?;
    expect(r, 400, "invalid_json").await?;
    let deeper = format!(r#"{{"kind": "factorize", "params": {}}}"#, "{\"a\":".repeat(1_000_000));
    let r = small.http.post(small.url("/api/v1/jobs")).bearer_auth(&small.key).header("content-type", "application/json").body(deeper).send().await?;
    expect(r, 413, "payload_too_large").await?;

    // Invalid UTF-8 in the body, in a JSON string escape, in the key header and
    // in the path.
    for body in [vec![0xff, 0xfe, b'{'], br#"{"kind": "factorize", "params": {"n": "\ud800"}}"#.to_vec(), b"{\"kind\": \"fac\xc3\x28torize\"}".to_vec()] {
        let r = env.http.post(env.url("/api/v1/jobs")).bearer_auth(&env.key).header("content-type", "application/json").body(body).send().await?;
        assert_eq!(r.status(), 400);
    }
    let (status, _) = raw_request(&env, b"GET /api/v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer crk_\xff\xfe\r\n\r\n").await?;
    assert_eq!(status, 401);
    let (status, _) = raw_request(&env, format!("GET /api/v1/jobs/%FF%FE HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n", env.key).as_bytes()).await?;
    assert_eq!(status, 404);
    // NUL characters (PostgreSQL text cannot hold them) in bodies and queries.
    for body in [
        json!({"kind": "scrape_hotels", "params": {"city": "Dub\u{0}ai"}}),
        json!({"kind": "check_url", "params": {"url": "http://a\u{0}b.example/"}}),
        json!({"kind": "factorize", "params": {"n": "12", "x\u{0}": 1}}),
        json!({"kind": "primes", "params": {"from": "1\u{0}", "to": 5, "mode": "count"}}),
    ] {
        let r = env.submit(body.clone()).await?;
        assert_eq!(r.status(), 400, "{body}: {}", r.text().await?);
    }
    let r = env.http.post(env.url("/api/v1/gene-files")).bearer_auth(&env.key).json(&json!({"file_name": "a\u{0}.fasta"})).send().await?;
    expect(r, 400, "invalid_field").await?;
    for path in ["/api/v1/hotels?q=a%00b", "/api/v1/cities?q=%00", "/api/v1/selections?q=x%00"] {
        let r = env.http.get(env.url(path)).bearer_auth(&env.key).send().await?;
        expect(r, 400, "invalid_query").await?;
    }
    // After all that, the gateway still works.
    assert_eq!(env.submit(json!({"kind": "factorize", "params": {"n": "12"}})).await?.status(), 202);
    Ok(())
}

/// Sends raw bytes as a request; the status code and the rest of the answer.
async fn raw_request(env: &TestEnv, bytes: &[u8]) -> anyhow::Result<(u16, String)> {
    let mut s = tokio::net::TcpStream::connect(env.base.trim_start_matches("http://")).await?;
    s.write_all(bytes).await?;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await??;
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Ok((status, text))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_gigabyte_upload_is_refused_before_anything_is_stored() -> R {
    let env = TestEnv::start_with(Options { genes_max_upload_bytes: 8 << 20, ..Default::default() }).await?;
    let file: Value = env.http.post(env.url("/api/v1/gene-files")).bearer_auth(&env.key).json(&json!({"file_name": "huge.fasta"})).send().await?.json().await?;
    let id = file["id"].as_str().unwrap_or_default().to_owned();
    // Declared: refused at once, without reading the body.
    let t = Instant::now();
    let head = format!("PUT /api/v1/gene-files/{id}/content HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: 10737418240\r\n\r\n>r\nACGT\n", env.key);
    let (status, text) = raw_request(&env, head.as_bytes()).await?;
    assert_eq!(status, 413, "{text}");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    // Not declared (chunked): cut off at the limit, the partial upload deleted.
    let body = futures::stream::iter((0..10_000).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'A'; 1 << 20]))));
    let r = env
        .http
        .put(env.url(&format!("/api/v1/gene-files/{id}/content")))
        .bearer_auth(&env.key)
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await;
    // The gateway answers 413 as soon as the limit is passed and may close
    // the connection while the client is still sending.
    if let Ok(r) = r {
        expect(r, 413, "payload_too_large").await?;
    }
    let file: Value = env.http.get(env.url(&format!("/api/v1/gene-files/{id}"))).bearer_auth(&env.key).send().await?.json().await?;
    assert!(file["job"].is_null(), "{file}");
    let r = env.http.post(env.url(&format!("/api/v1/gene-files/{id}/uploaded"))).bearer_auth(&env.key).send().await?;
    expect(r, 409, "conflict").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_nested_a_million_deep_is_refused_unparsed_in_bounded_time() -> R {
    let site = HotelSite::start(Duration::ZERO).await?;
    let profile = crunch_e2e::hotel_profile(json!({"Deep": "/Hotels-g3-Deep-Hotels.html", "Bold": "/Hotels-g4-Bold-Hotels.html"}))?;
    let env = TestEnv::start_with(Options { worker_env: crunch_e2e::hotel_site_worker_env(site.port, &profile), ..Default::default() }).await?;
    for city in ["Deep", "Bold"] {
        let t = Instant::now();
        let r = env.submit(json!({"kind": "scrape_hotels", "params": {"city": city, "pages": 1}, "fresh": true})).await?;
        assert_eq!(r.status(), 202, "{}", r.text().await?);
        let id = r.json::<Value>().await?["id"].as_str().unwrap_or_default().to_owned();
        let job = env.wait_for(&id, Duration::from_secs(60), |s| matches!(s, "succeeded" | "failed")).await?;
        eprintln!("{city}: {} in {:?}", job["status"], t.elapsed());
        // Refused unparsed (the parser would take about an hour on the <div>
        // page: its cost grows with the square of the depth), recorded as the
        // page's failure; the job itself completes at once.
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(job["result"]["hotels"], 0, "{job}");
        let failure = job["result"]["failures"][0]["error"].as_str().unwrap_or_default();
        assert!(failure.contains("nested deeper than 512"), "{job}");
        assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    }
    // The worker is still alive and well.
    let id = env.submit_n("1002").await?;
    assert_eq!(env.wait_finished(&id).await?["status"], "succeeded");
    Ok(())
}

/// Peak resident memory of a process, in MiB (Linux: VmHWM).
fn peak_rss_mib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmHWM"))?;
    Ok(kib / 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_of_huge_detail_pages_cannot_make_the_worker_hold_them_all() -> R {
    let site = HotelSite::start(Duration::ZERO).await?;
    let profile = crunch_e2e::hotel_profile(json!({"Big": "/Hotels-g5-Big-Hotels.html"}))?;
    let mut worker_env = crunch_e2e::hotel_site_worker_env(site.port, &profile);
    worker_env.extend([("CRUNCH_SCRAPE_CONCURRENCY".into(), "16".into()), ("CRUNCH_SCRAPE_PAGES_IN_FLIGHT".into(), "4".into())]);
    let env = TestEnv::start_with(Options { worker_env, ..Default::default() }).await?;
    let warm = env.submit_n("1003").await?;
    env.wait_finished(&warm).await?;
    let before = peak_rss_mib(env.workers[0].id())?;
    let r = env.submit(json!({"kind": "scrape_hotels", "params": {"city": "Big", "pages": 1}, "fresh": true})).await?;
    assert_eq!(r.status(), 202, "{}", r.text().await?);
    let id = r.json::<Value>().await?["id"].as_str().unwrap_or_default().to_owned();
    let job = env.wait_for(&id, Duration::from_secs(120), |s| matches!(s, "succeeded" | "failed")).await?;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!((job["result"]["hotels"].as_u64(), job["result"]["details_fetched"].as_u64()), (Some(40), Some(40)), "{job}");
    // 40 pages of 4.5 MiB are 180 MiB; with 4 in flight the worker holds
    // about 20 MiB of them at a time (and the text of the one it parses).
    let peak = peak_rss_mib(env.workers[0].id())?;
    eprintln!("worker peak RSS {before} MiB before the scrape, {peak} MiB after");
    assert!(peak - before < 100, "the scrape raised the worker's peak RSS from {before} to {peak} MiB");
    Ok(())
}
