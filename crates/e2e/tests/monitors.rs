//! Monitors: a URL checked every interval through check_url jobs on the I/O
//! queue, never two checks of one monitor at once, a check whose worker dies
//! redelivered, history, uptime and response times, pause, resume, delete,
//! and their check jobs swept once ended.

use std::time::{Duration, Instant};

use crunch_e2e::{Fixture, Options, TestEnv};
use diesel::RunQueryDsl;
use serde_json::{json, Value};

type R = anyhow::Result<()>;

async fn call(env: &TestEnv, method: reqwest::Method, path: &str, body: Option<Value>) -> anyhow::Result<(u16, Value)> {
    let mut req = env.http.request(method, env.url(path)).bearer_auth(&env.key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await?;
    let status = r.status().as_u16();
    let text = r.text().await?;
    Ok((status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text)? }))
}

async fn monitor(env: &TestEnv, id: &str) -> anyhow::Result<Value> {
    let (status, m) = call(env, reqwest::Method::GET, &format!("/api/v1/monitors/{id}"), None).await?;
    anyhow::ensure!(status == 200, "{status} {m}");
    Ok(m)
}

/// Waits until the monitor satisfies `pred`.
async fn wait_monitor(env: &TestEnv, id: &str, within: Duration, pred: impl Fn(&Value) -> bool) -> anyhow::Result<Value> {
    let t = Instant::now();
    loop {
        let m = monitor(env, id).await?;
        if pred(&m) {
            return Ok(m);
        }
        anyhow::ensure!(t.elapsed() < within, "monitor {id} after {within:?}: {m}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitors_check_every_interval_one_at_a_time_with_history_and_figures() -> R {
    let site = Fixture::start().await?;
    let mut env = TestEnv::start_with(Options {
        worker_env: vec![
            ("CRUNCH_SSRF_ALLOWLIST".into(), "127.0.0.1/32".into()),
            ("CRUNCH_RECONCILE_INTERVAL_MS".into(), "200".into()),
            ("CRUNCH_RETENTION_MONITOR_JOBS".into(), "2s".into()),
            ("CRUNCH_RETENTION_INTERVAL_MS".into(), "500".into()),
        ],
        ..Default::default()
    })
    .await?;
    let base = format!("http://127.0.0.1:{}", site.port);
    let post = |body: Value| call(&env, reqwest::Method::POST, "/api/v1/monitors", Some(body));

    // Bad bodies: the check's rules and messages, and the interval's.
    for (body, field) in [
        (json!({"url": format!("{base}/ok")}), "interval_s"),
        (json!({"url": format!("{base}/ok"), "interval_s": 0}), "interval_s"),
        (json!({"url": format!("{base}/ok"), "interval_s": 86_401}), "interval_s"),
        (json!({"url": "ftp://x.y/", "interval_s": 5}), "url"),
        (json!({"url": format!("{base}/ok"), "interval_s": 5, "retry_on": ["4xx"]}), "retry_on"),
        (json!({"url": format!("{base}/ok"), "interval_s": 5, "color": "red"}), "color"),
        (json!([1]), ""),
    ] {
        let (status, err) = post(body.clone()).await?;
        assert_eq!(status, 400, "{body}: {err}");
        assert!(err["error"]["field"].as_str().unwrap_or("").contains(field), "{body}: {err}");
    }
    assert_eq!(env.http.get(env.url("/api/v1/monitors")).send().await?.status(), 401);

    let (status, up) = post(json!({"url": format!("{base}/ok"), "interval_s": 1})).await?;
    assert_eq!(status, 201, "{up}");
    assert_eq!((up["state"].as_str(), up["params"]["retry_on"].clone()), (Some("pending"), json!(["network"])), "{up}");
    let up_id = up["id"].as_str().unwrap_or_default().to_owned();
    // Down twice (503), then up: retried only on what retry_on names.
    let (_, flaky) = post(json!({"url": format!("{base}/flaky/2/monitor"), "interval_s": 1, "retries": 0})).await?;
    let flaky_id = flaky["id"].as_str().unwrap_or_default().to_owned();
    // The SSRF guard applies: an internal address is down, `blocked`.
    let (_, inner) = post(json!({"url": "http://10.0.0.1/", "interval_s": 1, "retries": 0})).await?;
    let inner_id = inner["id"].as_str().unwrap_or_default().to_owned();

    // Never two checks of one monitor at once: sampled while they run.
    let mut conn = env.db()?;
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(4) {
        let busy: Count = diesel::sql_query(
            "SELECT coalesce(max(n), 0) AS n FROM (SELECT count(*) AS n FROM jobs WHERE monitor_id IS NOT NULL AND finished_at IS NULL GROUP BY monitor_id) c",
        )
        .get_result(&mut conn)?;
        assert!(busy.n <= 1, "{} checks of one monitor at once", busy.n);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let m = wait_monitor(&env, &up_id, Duration::from_secs(20), |m| m["checks_24h"].as_i64().unwrap_or(0) >= 3).await?;
    assert_eq!((m["state"].as_str(), m["uptime_24h"].as_f64(), m["uptime_7d"].as_f64()), (Some("up"), Some(100.0), Some(100.0)), "{m}");
    assert!(m["p50_ms_24h"].as_f64().is_some_and(|p| p >= 0.0) && m["p95_ms_24h"].as_f64() >= m["p50_ms_24h"].as_f64(), "{m}");
    assert_eq!(m["recent"].as_array().map(Vec::len), m["checks_24h"].as_u64().map(|n| n.min(30) as usize), "{m}");
    let (_, checks) = call(&env, reqwest::Method::GET, &format!("/api/v1/monitors/{up_id}/checks?limit=100"), None).await?;
    let times: Vec<chrono::DateTime<chrono::Utc>> = checks["items"].as_array().expect("items").iter().map(|c| serde_json::from_value(c["checked_at"].clone()).expect("a time")).collect();
    assert!(times.windows(2).all(|w| w[0] > w[1]), "newest first: {checks}");
    // Started an interval apart (each check's own time varies its end).
    let span = *times.first().expect("checks") - *times.last().expect("checks");
    assert!(times.windows(2).all(|w| w[0] - w[1] >= chrono::Duration::milliseconds(500)), "{times:?}");
    assert!(span >= chrono::Duration::milliseconds(900 * (times.len() as i64 - 1)), "an interval apart: {times:?}");

    let m = wait_monitor(&env, &flaky_id, Duration::from_secs(20), |m| m["checks_24h"].as_i64().unwrap_or(0) >= 3 && m["state"] == "up").await?;
    let uptime = m["uptime_24h"].as_f64().unwrap_or(-1.0);
    assert!(0.0 < uptime && uptime < 100.0, "{m}");
    let (_, checks) = call(&env, reqwest::Method::GET, &format!("/api/v1/monitors/{flaky_id}/checks"), None).await?;
    let oldest: Vec<Option<i64>> = checks["items"].as_array().expect("items").iter().rev().take(3).map(|c| c["status"].as_i64()).collect();
    assert_eq!(oldest, vec![Some(503), Some(503), Some(200)], "{checks}");
    let m = wait_monitor(&env, &inner_id, Duration::from_secs(20), |m| m["last_check"].is_object()).await?;
    assert_eq!((m["state"].as_str(), m["last_check"]["error"].as_str()), (Some("down"), Some("blocked")), "{m}");

    // Monitors' checks are not in the job listing nor the URL-check history.
    let (_, jobs) = call(&env, reqwest::Method::GET, "/api/v1/jobs?limit=100", None).await?;
    assert_eq!(jobs["items"], json!([]), "{jobs}");
    let (_, history) = call(&env, reqwest::Method::GET, "/api/v1/url-checks", None).await?;
    assert_eq!(history["total"], 0, "{history}");

    // A check whose worker dies is redelivered: the monitor goes on.
    env.kill_worker(0);
    env.spawn_worker()?;
    let before = monitor(&env, &up_id).await?["checks_24h"].as_i64().unwrap_or(0);
    wait_monitor(&env, &up_id, Duration::from_secs(60), |m| m["checks_24h"].as_i64().unwrap_or(0) >= before + 2).await?;

    // Pause: no more checks (one under way may still land); resume.
    let (status, paused) = call(&env, reqwest::Method::PATCH, &format!("/api/v1/monitors/{up_id}"), Some(json!({"paused": true}))).await?;
    assert_eq!((status, paused["state"].as_str()), (200, Some("paused")), "{paused}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let at_pause = monitor(&env, &up_id).await?["checks_24h"].as_i64().unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(monitor(&env, &up_id).await?["checks_24h"].as_i64(), Some(at_pause));
    let (status, _) = call(&env, reqwest::Method::PATCH, &format!("/api/v1/monitors/{up_id}"), Some(json!({"paused": "no"}))).await?;
    assert_eq!(status, 400);
    call(&env, reqwest::Method::PATCH, &format!("/api/v1/monitors/{up_id}"), Some(json!({"paused": false}))).await?;
    wait_monitor(&env, &up_id, Duration::from_secs(20), |m| m["checks_24h"].as_i64().unwrap_or(0) > at_pause && m["state"] == "up").await?;

    // The list, then delete: 204, and 404 from then on.
    let (_, list) = call(&env, reqwest::Method::GET, "/api/v1/monitors", None).await?;
    let ids: Vec<&str> = list["items"].as_array().expect("items").iter().map(|m| m["id"].as_str().unwrap_or("")).collect();
    assert_eq!(ids, vec![up_id.as_str(), flaky_id.as_str(), inner_id.as_str()]);
    for id in [&up_id, &flaky_id, &inner_id] {
        let (status, _) = call(&env, reqwest::Method::DELETE, &format!("/api/v1/monitors/{id}"), None).await?;
        assert_eq!(status, 204);
    }
    for path in [format!("/api/v1/monitors/{up_id}"), format!("/api/v1/monitors/{up_id}/checks"), "/api/v1/monitors/not-an-id".into()] {
        assert_eq!(call(&env, reqwest::Method::GET, &path, None).await?.0, 404, "{path}");
    }
    assert_eq!(call(&env, reqwest::Method::DELETE, &format!("/api/v1/monitors/{up_id}"), None).await?.0, 404);
    let left: Count = diesel::sql_query("SELECT count(*) AS n FROM monitor_checks").get_result(&mut conn)?;
    assert_eq!(left.n, 0, "the history goes with its monitor");
    // Their check jobs are removed once ended (2 s here, an hour by default).
    let t = Instant::now();
    loop {
        let jobs: Count = diesel::sql_query("SELECT count(*) AS n FROM jobs WHERE monitor_id IS NOT NULL").get_result(&mut conn)?;
        if jobs.n == 0 {
            break;
        }
        anyhow::ensure!(t.elapsed() < Duration::from_secs(20), "{} check jobs left", jobs.n);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Ok(())
}
