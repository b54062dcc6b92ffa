//! `check_url` end to end, against a fixture site served by the test: reports,
//! classified errors, the SSRF guard (with and without the allow-list), the
//! I/O queue and the history endpoint.

use std::time::Duration;

use crunch_e2e::{Fixture, Options, TestEnv};
use serde_json::{json, Value};

type R = anyhow::Result<()>;

async fn check(env: &TestEnv, params: Value) -> anyhow::Result<Value> {
    let r = env.submit(json!({"kind": "check_url", "params": params, "fresh": true})).await?;
    anyhow::ensure!(r.status() == 202, "submit: {} {}", r.status(), r.text().await?);
    let job: Value = r.json().await?;
    let done = env.wait_finished(job["id"].as_str().unwrap_or_default()).await?;
    anyhow::ensure!(done["status"] == "succeeded", "{done}");
    Ok(done["result"].clone())
}

fn allow_loopback(extra: Vec<(String, String)>) -> Options {
    let mut worker_env = vec![
        ("CRUNCH_SSRF_ALLOWLIST".into(), "127.0.0.1/32".into()),
        ("CRUNCH_URL_CHECK_MAX_BODY_BYTES".into(), "1000000".into()),
    ];
    worker_env.extend(extra);
    Options { worker_env, ..Default::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_checks_report_status_redirects_timings_and_classified_errors() -> R {
    let site = Fixture::start().await?;
    let env = TestEnv::start_with(allow_loopback(vec![])).await?;
    let base = format!("http://127.0.0.1:{}", site.port);

    let ok = check(&env, json!({"url": format!("{base}/redirect")})).await?;
    assert_eq!(ok["status"], 200, "{ok}");
    assert_eq!(ok["ok"], true);
    assert_eq!(ok["final_url"], format!("{base}/ok"));
    assert_eq!(ok["redirects"][0]["status"], 302);
    assert_eq!(ok["content_type"], "text/html; charset=utf-8");
    assert_eq!(ok["content_length"], 12);
    for t in ["dns", "connect", "first_byte", "total"] {
        assert!(ok["timings_ms"][t].as_f64().is_some_and(|v| v >= 0.0), "{t}: {ok}");
    }
    assert!(ok["tls_cert_expires_at"].is_null());

    let head = check(&env, json!({"url": format!("{base}/ok"), "method": "HEAD"})).await?;
    assert_eq!(head["status"], 200);
    let unavailable = check(&env, json!({"url": format!("{base}/status/503"), "retries": 0})).await?;
    assert_eq!((unavailable["status"].as_u64(), unavailable["ok"].as_bool()), (Some(503), Some(false)));
    // A 5xx is an answer: retried only when `retry_on` asks, with backoff.
    let flaky = |t: &str| format!("{base}/flaky/2/{t}");
    let once = check(&env, json!({"url": flaky("a"), "retries": 2})).await?;
    assert_eq!((once["status"].as_u64(), once["attempts"].as_u64()), (Some(503), Some(1)), "{once}");
    let retried = check(&env, json!({"url": flaky("b"), "retries": 2, "retry_on": ["network", "5xx"]})).await?;
    assert_eq!((retried["status"].as_u64(), retried["ok"].as_bool(), retried["attempts"].as_u64()), (Some(200), Some(true), Some(3)), "{retried}");
    let short = check(&env, json!({"url": flaky("c"), "retries": 1, "retry_on": ["5xx"]})).await?;
    assert_eq!((short["status"].as_u64(), short["attempts"].as_u64()), (Some(503), Some(2)), "{short}");

    let cases = [
        (json!({"url": format!("{base}/loop"), "retries": 0}), "too_many_redirects"),
        (json!({"url": format!("{base}/big"), "retries": 0}), "body_too_large"),
        (json!({"url": format!("{base}/slow"), "retries": 0, "timeout_ms": 300}), "timeout"),
        (json!({"url": "http://127.0.0.1:1/", "retries": 0}), "connect"),
        (json!({"url": "http://no-such-host.invalid/", "retries": 1}), "dns"),
        (json!({"url": format!("http://127.0.0.2:{}/ok", site.port), "retries": 0}), "blocked"),
        (json!({"url": format!("{base}/to-other"), "retries": 0}), "blocked"),
        (json!({"url": "http://169.254.169.254/latest/meta-data/", "retries": 0}), "blocked"),
        (json!({"url": "http://2130706434/", "retries": 0}), "blocked"),
        (json!({"url": "http://0x7f000002/", "retries": 0}), "blocked"),
        (json!({"url": "http://[::1]:1/", "retries": 0}), "blocked"),
        (json!({"url": "http://10.0.0.1/", "retries": 0}), "blocked"),
    ];
    for (params, kind) in cases {
        let r = check(&env, params.clone()).await?;
        assert_eq!(r["error"]["kind"], kind, "{params}: {r}");
        assert_eq!(r["ok"], false);
    }
    let retried = check(&env, json!({"url": "http://no-such-host.invalid/", "retries": 2})).await?;
    assert_eq!(retried["attempts"], 3);

    // Other schemes are refused at submission.
    for url in ["ftp://example.com/", "file:///etc/passwd", "javascript:alert(1)"] {
        let r = env.submit(json!({"kind": "check_url", "params": {"url": url}})).await?;
        assert_eq!(r.status(), 400, "{url}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_allow_list_the_guard_refuses_the_fixture_site() -> R {
    let site = Fixture::start().await?;
    let env = TestEnv::start().await?;
    let r = check(&env, json!({"url": format!("http://localhost:{}/ok", site.port), "retries": 0})).await?;
    assert_eq!(r["error"]["kind"], "blocked", "{r}");
    // The message does not tell which internal addresses the name has.
    let message = r["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains("localhost") && !message.contains("127.0.0.1") && !message.contains("::1"), "{r}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_checks_report_the_certificate_expiry_and_refuse_untrusted_ones() -> R {
    let (site, cert_pem) = Fixture::start_tls().await?;
    let dir = std::env::temp_dir().join(format!("crunch-ca-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, cert_pem)?;
    let trusting = TestEnv::start_with(allow_loopback(vec![("CRUNCH_URL_CHECK_EXTRA_CA_FILE".into(), ca.display().to_string())])).await?;
    let r = check(&trusting, json!({"url": format!("https://localhost:{}/ok", site.port)})).await?;
    assert_eq!(r["status"], 200, "{r}");
    assert!(r["tls_cert_expires_at"].as_str().is_some_and(|t| t.len() >= 20), "{r}");
    assert!(r["timings_ms"]["tls"].as_f64().is_some(), "{r}");
    let strict = TestEnv::start_with(allow_loopback(vec![])).await?;
    let r = check(&strict, json!({"url": format!("https://localhost:{}/ok", site.port), "retries": 0})).await?;
    assert_eq!(r["error"]["kind"], "tls", "{r}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_site_does_not_delay_cpu_jobs_and_history_is_newest_first() -> R {
    let site = Fixture::start().await?;
    let env = TestEnv::start_with(allow_loopback(vec![("CRUNCH_WORKER_PREFETCH".into(), "1".into())])).await?;
    let base = format!("http://127.0.0.1:{}", site.port);
    // Occupy the I/O side with slow checks, then run a CPU job: it finishes first.
    let mut slow = Vec::new();
    for i in 0..3 {
        let r = env.submit(json!({"kind": "check_url", "params": {"url": format!("{base}/slow?{i}"), "retries": 0}})).await?;
        slow.push(r.json::<Value>().await?["id"].as_str().unwrap_or_default().to_owned());
    }
    let cpu = env.submit_n("999983").await?;
    let job = env.wait_for(&cpu, Duration::from_secs(2), |s| s == "succeeded").await?;
    assert_eq!(job["result"]["factors"][0]["p"], "999983");
    for id in &slow {
        env.wait_finished(id).await?;
    }
    let page: Value = env.http.get(env.url("/api/v1/url-checks?limit=2")).bearer_auth(&env.key).send().await?.json().await?;
    assert_eq!(page["total"], 3);
    assert_eq!(page["items"].as_array().map(|a| a.len()), Some(2));
    assert_eq!(page["items"][0]["url"], format!("{base}/slow?2"));
    let one: Value = env
        .http
        .get(env.url("/api/v1/url-checks"))
        .query(&[("url", format!("{base}/slow?0"))])
        .bearer_auth(&env.key)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(one["total"], 1);
    assert_eq!(one["items"][0]["result"]["status"], 200);
    let bad = env.http.get(env.url("/api/v1/url-checks?limit=0")).bearer_auth(&env.key).send().await?;
    assert_eq!(bad.status(), 400);
    Ok(())
}
