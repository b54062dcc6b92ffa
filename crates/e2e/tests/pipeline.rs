//! The job pipeline end to end: real gateway, real worker processes, real
//! PostgreSQL and RabbitMQ.

mod common;

use std::time::{Duration, Instant};

use crunch_e2e::{Options, TestEnv};
use diesel::sql_types::{BigInt, Text};
use diesel::RunQueryDsl;
use futures::StreamExt;
use serde_json::{json, Value};

type R = anyhow::Result<()>;

/// 8 * M107 * M127: the factor 2^3 comes at once, the balanced 234-bit rest
/// takes the quadratic sieve tens of seconds (8 * M89 * M107, whose rest is
/// 196 bits, was factored within the 1 s budget on a fast VM).
const HARD: &str = "220855883097298041197912187592863453347669729140964809359638424006426632";
/// (2^89 - 1)(2^127 - 1): a balanced 216-bit semiprime, a few seconds of
/// quadratic sieve on two cores.
const SECONDS: &str = "105312291668557186697918027513529248857806893649219117400977309697";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submitted_job_is_factored_with_sorted_prime_factors() -> R {
    let env = TestEnv::start().await?;
    let r = env.submit(json!({"kind": "factorize", "params": {"n": "360"}})).await?;
    assert_eq!(r.status(), 202);
    let location = r.headers()["location"].to_str()?.to_owned();
    let job: Value = r.json().await?;
    for field in ["id", "kind", "params", "status", "progress", "result", "error", "attempts", "created_at", "started_at", "finished_at"] {
        assert!(job.get(field).is_some(), "missing {field} in {job}");
    }
    assert_eq!(location, format!("/api/v1/jobs/{}", job["id"].as_str().unwrap_or_default()));
    assert_eq!(job["status"], "queued");
    let done = env.wait_finished(job["id"].as_str().unwrap_or_default()).await?;
    assert_eq!(done["status"], "succeeded", "{done}");
    let factors: Vec<(String, u64)> = done["result"]["factors"]
        .as_array()
        .expect("factors")
        .iter()
        .map(|f| (f["p"].as_str().unwrap_or_default().to_owned(), f["e"].as_u64().unwrap_or(0)))
        .collect();
    assert_eq!(factors, vec![("2".into(), 3), ("3".into(), 2), ("5".into(), 1)]);
    assert_eq!(done["progress"], 1.0);
    assert_eq!(done["attempts"], 1);
    assert!(done["finished_at"].is_string() && done["started_at"].is_string());

    // n = 1 has no prime factors; a 2^127-scale composite is split too.
    let one = env.submit_n("1").await?;
    let big = env.submit_n("170141183460469231731687303715884105727000").await?; // M127 * 1000
    let one = env.wait_finished(&one).await?;
    assert_eq!(one["result"]["factors"], json!([]));
    let big = env.wait_finished(&big).await?;
    let ps: Vec<&str> = big["result"]["factors"].as_array().expect("factors").iter().map(|f| f["p"].as_str().unwrap_or("")).collect();
    assert_eq!(ps, vec!["2", "5", "170141183460469231731687303715884105727"]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_is_newest_first_with_cursor_pagination_and_filters() -> R {
    let env = TestEnv::start().await?;
    let mut ids = Vec::new();
    for n in 2..=6 {
        ids.push(env.submit_n(&n.to_string()).await?);
    }
    let page1: Value = env.http.get(env.url("/api/v1/jobs?limit=2")).bearer_auth(&env.key).send().await?.json().await?;
    let got: Vec<&str> = page1["items"].as_array().expect("items").iter().map(|j| j["id"].as_str().unwrap_or("")).collect();
    assert_eq!(got, vec![ids[4].as_str(), ids[3].as_str()]);
    let next = page1["next"].as_str().expect("a next cursor").to_owned();
    let page2: Value = env.http.get(env.url(&format!("/api/v1/jobs?limit=2&before={next}"))).bearer_auth(&env.key).send().await?.json().await?;
    let got: Vec<&str> = page2["items"].as_array().expect("items").iter().map(|j| j["id"].as_str().unwrap_or("")).collect();
    assert_eq!(got, vec![ids[2].as_str(), ids[1].as_str()]);
    let next = page2["next"].as_str().expect("a next cursor").to_owned();
    let page3: Value = env.http.get(env.url(&format!("/api/v1/jobs?limit=2&before={next}"))).bearer_auth(&env.key).send().await?.json().await?;
    assert_eq!(page3["items"].as_array().map(|a| a.len()), Some(1));
    assert!(page3["next"].is_null());

    // Default limit is 10; filters by kind and status.
    for id in &ids {
        env.wait_finished(id).await?;
    }
    let all: Value = env.http.get(env.url("/api/v1/jobs?kind=factorize&status=succeeded")).bearer_auth(&env.key).send().await?.json().await?;
    assert_eq!(all["items"].as_array().map(|a| a.len()), Some(5));
    let none: Value = env.http.get(env.url("/api/v1/jobs?status=queued")).bearer_auth(&env.key).send().await?.json().await?;
    assert_eq!(none["items"], json!([]));

    for bad in ["limit=0", "limit=101", "limit=abc", "status=done", "kind=nope", "before=xyz"] {
        let r = env.http.get(env.url(&format!("/api/v1/jobs?{bad}"))).bearer_auth(&env.key).send().await?;
        assert_eq!(r.status(), 400, "{bad}");
        let body: Value = r.json().await?;
        assert!(body["error"]["code"].is_string(), "{bad}: {body}");
    }

    // The charts' numbers: the five jobs ended in the last hour, per minute,
    // with their durations from submission to the end.
    let stats: Value = env.http.get(env.url("/api/v1/stats/jobs")).bearer_auth(&env.key).send().await?.json().await?;
    let series = stats["series"].as_array().expect("series");
    assert_eq!((series.len(), series[0]["kind"].as_str()), (1, Some("factorize")), "{stats}");
    let points = series[0]["points"].as_array().expect("points");
    let ended: i64 = points.iter().map(|p| p["succeeded"].as_i64().unwrap_or(0) + p["failed"].as_i64().unwrap_or(0)).sum();
    assert_eq!(ended, 5, "{stats}");
    for p in points {
        let (p50, p99) = (p["p50_ms"].as_f64().unwrap_or(-1.0), p["p99_ms"].as_f64().unwrap_or(-1.0));
        assert!(0.0 <= p50 && p50 <= p99 && p99 < 60_000.0, "{p}");
        assert!((p["per_s"].as_f64().unwrap_or(0.0) * 60.0 - (p["succeeded"].as_i64().unwrap_or(0) + p["failed"].as_i64().unwrap_or(0)) as f64).abs() < 1e-9, "{p}");
    }
    for bad in ["minutes=0", "minutes=1441", "minutes=x"] {
        let r = env.http.get(env.url(&format!("/api/v1/stats/jobs?{bad}"))).bearer_auth(&env.key).send().await?;
        assert_eq!(r.status(), 400, "{bad}");
    }
    assert_eq!(env.http.get(env.url("/api/v1/stats/jobs")).send().await?.status(), 401);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_submission_returns_the_existing_job_unless_fresh() -> R {
    let env = TestEnv::start().await?;
    let first = env.submit_n("123456789").await?;
    let again = env.submit(json!({"kind": "factorize", "params": {"n": "000123456789"}})).await?;
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await?;
    assert_eq!(again["id"], first.as_str());
    env.wait_finished(&first).await?;
    let after = env.submit(json!({"kind": "factorize", "params": {"n": "123456789"}})).await?;
    assert_eq!(after.status(), 200);
    let after: Value = after.json().await?;
    assert_eq!(after["status"], "succeeded");
    let fresh = env.submit(json!({"kind": "factorize", "params": {"n": "123456789"}, "fresh": true})).await?;
    assert_eq!(fresh.status(), 202);
    let fresh: Value = fresh.json().await?;
    assert_ne!(fresh["id"], first.as_str());

    // Another key does not see (or reuse) this key's job.
    let other = crunch_e2e::create_key(&env.database_url, "other")?;
    let r = env.http.get(env.url(&format!("/api/v1/jobs/{first}"))).bearer_auth(&other).send().await?;
    assert_eq!(r.status(), 404);
    let r = env.http.delete(env.url(&format!("/api/v1/jobs/{first}"))).bearer_auth(&other).send().await?;
    assert_eq!(r.status(), 404);
    let mine = env.http.post(env.url("/api/v1/jobs")).bearer_auth(&other).json(&json!({"kind": "factorize", "params": {"n": "123456789"}})).send().await?;
    assert_eq!(mine.status(), 202);
    let list: Value = env.http.get(env.url("/api/v1/jobs")).bearer_auth(&other).send().await?.json().await?;
    assert_eq!(list["items"].as_array().map(|a| a.len()), Some(1));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_json_errors() -> R {
    let env = TestEnv::start_with(Options { max_body_bytes: 4096, ..Default::default() }).await?;
    let cases = [
        (json!({"kind": "factorize", "params": {"n": "12x"}}), 400, "invalid_params"),
        (json!({"kind": "factorize", "params": {"n": "0"}}), 400, "invalid_params"),
        (json!({"kind": "factorize", "params": {"n": "-7"}}), 400, "invalid_params"),
        (json!({"kind": "factorize", "params": {"n": 1.5}}), 400, "invalid_params"),
        (json!({"kind": "factorize", "params": {"n": "1".repeat(301)}}), 400, "invalid_params"),
        (json!({"kind": "factorize", "params": {}}), 400, "invalid_params"),
        (json!({"kind": "sing", "params": {}}), 400, "unknown_kind"),
        (json!({"params": {"n": "5"}}), 400, "invalid_json"),
        (json!({"kind": "factorize", "params": {"n": "5"}, "extra": 1}), 400, "invalid_json"),
    ];
    for (body, status, code) in cases {
        let r = env.submit(body.clone()).await?;
        assert_eq!(r.status(), status, "{body}");
        let err: Value = r.json().await?;
        assert_eq!(err["error"]["code"], code, "{body}: {err}");
        assert!(err["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let r = env.submit(json!({"kind": "sing"})).await?;
    let err: Value = r.json().await?;
    assert_eq!(err["error"]["details"]["valid_kinds"], json!(["factorize", "primes", "nth_prime", "check_url", "scrape_hotels", "genes"]));
    let r = env.submit(json!({"kind": "factorize", "params": {"n": "1".repeat(301)}})).await?;
    let err: Value = r.json().await?;
    assert!(err["error"]["message"].as_str().unwrap_or("").contains("300"), "{err}");

    // Not JSON at all, and invalid UTF-8.
    let r = env.http.post(env.url("/api/v1/jobs")).bearer_auth(&env.key).header("content-type", "application/json").body("{nope").send().await?;
    assert_eq!(r.status(), 400);
    let r = env.http.post(env.url("/api/v1/jobs")).bearer_auth(&env.key).header("content-type", "application/json").body(vec![0xff, 0xfe, b'{']).send().await?;
    assert_eq!(r.status(), 400);
    // Oversized body: 413.
    let big = json!({"kind": "factorize", "params": {"n": "1".repeat(10_000)}});
    let r = env.submit(big).await?;
    assert_eq!(r.status(), 413);
    let err: Value = r.json().await?;
    assert_eq!(err["error"]["code"], "payload_too_large");

    // 401 without a key, with a malformed one and with an unknown one.
    let r = env.http.post(env.url("/api/v1/jobs")).json(&json!({"kind": "factorize", "params": {"n": "5"}})).send().await?;
    assert_eq!(r.status(), 401);
    let err: Value = r.json().await?;
    assert_eq!(err["error"]["code"], "unauthorized");
    for key in ["nope", "crk_0000000000000000000000000000000000000000000000000000000000000000"] {
        let r = env.http.get(env.url("/api/v1/jobs")).bearer_auth(key).send().await?;
        assert_eq!(r.status(), 401, "{key}");
    }
    // 404s: unknown job, malformed id, unknown route (all JSON).
    for path in [format!("/api/v1/jobs/{}", uuid::Uuid::new_v4()), "/api/v1/jobs/not-a-uuid".into(), "/api/v1/nothing".into()] {
        let r = env.http.get(env.url(&path)).bearer_auth(&env.key).send().await?;
        assert_eq!(r.status(), 404, "{path}");
        let err: Value = r.json().await?;
        assert_eq!(err["error"]["code"], "not_found", "{path}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_running_job_within_a_second() -> R {
    let env = TestEnv::start_with(Options {
        worker_env: vec![("CRUNCH_WORKER_PREFETCH".into(), "1".into())],
        ..Default::default()
    })
    .await?;
    let id = env.submit_n(HARD).await?;
    env.wait_for(&id, Duration::from_secs(20), |s| s == "running").await?;
    let r = env.http.delete(env.url(&format!("/api/v1/jobs/{id}"))).bearer_auth(&env.key).send().await?;
    assert_eq!(r.status(), 200);
    let job: Value = r.json().await?;
    assert_eq!(job["status"], "cancelled");
    // The only worker (prefetch 1) is free again within about a second: a new
    // job submitted now finishes quickly.
    let t = Instant::now();
    let next = env.submit_n("77").await?;
    let done = env.wait_finished(&next).await?;
    assert_eq!(done["status"], "succeeded");
    assert!(t.elapsed() < Duration::from_secs(5), "worker was busy for {:?}", t.elapsed());
    assert_eq!(env.get_job(&id).await?["status"], "cancelled");
    // Cancelling a finished job: 409.
    let r = env.http.delete(env.url(&format!("/api/v1/jobs/{next}"))).bearer_auth(&env.key).send().await?;
    assert_eq!(r.status(), 409);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_budget_fails_the_job_with_the_partial_factorization() -> R {
    let env = TestEnv::start_with(Options {
        worker_env: vec![("CRUNCH_JOB_TIME_BUDGET_SECS".into(), "1".into())],
        ..Default::default()
    })
    .await?;
    let id = env.submit_n(HARD).await?;
    let job = env.wait_finished(&id).await?;
    assert_eq!(job["status"], "failed");
    assert_eq!(job["error"]["code"], "time_budget_exceeded");
    assert_eq!(job["error"]["details"]["factors"], json!([{"p": "2", "e": 3, "method": "trial_division"}]));
    assert_eq!(job["error"]["details"]["unfactored"].as_array().map(|a| a.len()), Some(1));
    assert!(job["result"].is_null());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_streams_the_callers_events_only() -> R {
    let env = TestEnv::start().await?;
    let url = env.url("/api/v1/events").replace("http://", "ws://");
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url.as_str())?;
    req.headers_mut().insert("Authorization", format!("Bearer {}", env.key).parse()?);
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await?;
    // A second client authenticated by query parameter, with another key.
    let other = crunch_e2e::create_key(&env.database_url, "other")?;
    let (mut ws_other, _) = tokio_tungstenite::connect_async(format!("{url}?access_token={other}")).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let id = env.submit_n("1001").await?;
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seen.iter().any(|t: &String| t == "succeeded") && Instant::now() < deadline {
        if let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            if let Ok(text) = msg.into_text() {
                let ev: Value = serde_json::from_str(&text)?;
                assert_eq!(ev["job_id"], id.as_str());
                seen.push(ev["type"].as_str().unwrap_or("").to_owned());
                if ev["type"] == "succeeded" {
                    assert_eq!(ev["data"]["factors"].as_array().map(|a| a.len()), Some(3));
                }
            }
        }
    }
    // `queued` (sent by the gateway) and `started` (by the worker) travel
    // separately and may arrive in either order (docs/api.md).
    assert!(seen.contains(&"queued".to_owned()), "{seen:?}");
    assert!(seen.contains(&"started".to_owned()), "{seen:?}");
    assert_eq!(seen.iter().filter(|t| *t == "succeeded").count(), 1, "{seen:?}");
    // The other key's socket got nothing.
    let got = tokio::time::timeout(Duration::from_millis(500), ws_other.next()).await;
    assert!(got.is_err(), "other key received {got:?}");
    // Without a key: 401.
    let r = tokio_tungstenite::connect_async(url.as_str()).await;
    assert!(r.is_err());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_means_503_quickly_and_nothing_stored() -> R {
    let db = crunch_e2e::fresh_database()?;
    let env = TestEnv::start_with(Options {
        database_url: Some(db),
        gateway_amqp_url: Some("amqp://guest:guest@127.0.0.1:1/%2f".into()),
        workers: 0,
        ..Default::default()
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = Instant::now();
    let r = env.submit(json!({"kind": "factorize", "params": {"n": "10"}})).await?;
    assert_eq!(r.status(), 503);
    assert!(t.elapsed() < Duration::from_secs(3));
    let err: Value = r.json().await?;
    assert_eq!(err["error"]["code"], "service_unavailable");
    let list: Value = env.http.get(env.url("/api/v1/jobs")).bearer_auth(&env.key).send().await?.json().await?;
    assert_eq!(list["items"], json!([]));
    let ready = env.http.get(env.url("/readyz")).send().await?;
    assert_eq!(ready.status(), 503);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_down_means_503_quickly() -> R {
    let db = crunch_e2e::fresh_database()?;
    let env = TestEnv::start_with(Options {
        database_url: Some(db),
        gateway_db_url: Some("postgres://postgres@127.0.0.1:1/none".into()),
        workers: 0,
        ..Default::default()
    })
    .await?;
    let t = Instant::now();
    let r = env.submit(json!({"kind": "factorize", "params": {"n": "10"}})).await?;
    assert_eq!(r.status(), 503);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    let err: Value = r.json().await?;
    assert_eq!(err["error"]["code"], "service_unavailable");
    Ok(())
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_job_yields_exactly_one_result_after_redelivery() -> R {
    let mut env = TestEnv::start_with(Options {
        worker_env: vec![("CRUNCH_WORKER_PREFETCH".into(), "1".into())],
        ..Default::default()
    })
    .await?;
    let url = env.url("/api/v1/events").replace("http://", "ws://");
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{url}?access_token={}", env.key)).await?;
    let id = env.submit_n(SECONDS).await?;
    env.wait_for(&id, Duration::from_secs(20), |s| s == "running").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    env.kill_worker(0);
    env.spawn_worker()?;
    let job = env.wait_for(&id, Duration::from_secs(90), |s| s == "succeeded").await?;
    assert_eq!(job["attempts"], 2, "{job}");
    let ps: Vec<&str> = job["result"]["factors"].as_array().expect("factors").iter().map(|f| f["p"].as_str().unwrap_or("")).collect();
    assert_eq!(ps, vec!["618970019642690137449562111", "170141183460469231731687303715884105727"]);
    let mut conn = env.db()?;
    let events: Count = diesel::sql_query("SELECT count(*) AS n FROM job_events WHERE job_id = $1::uuid AND event->>'type' = 'succeeded'")
        .bind::<Text, _>(&id)
        .get_result(&mut conn)?;
    assert_eq!(events.n, 1);
    // Exactly one succeeded event reached the WebSocket.
    let mut succeeded = 0;
    while let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_secs(3), ws.next()).await {
        if let Ok(text) = msg.into_text() {
            let ev: Value = serde_json::from_str(&text)?;
            if ev["type"] == "succeeded" {
                succeeded += 1;
            }
        }
    }
    assert_eq!(succeeded, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages_are_dead_lettered_with_a_reason_and_the_worker_keeps_going() -> R {
    use crunch_bus::lapin::options::{BasicGetOptions, BasicPublishOptions};
    use crunch_bus::lapin::BasicProperties;
    let env = TestEnv::start().await?;
    let (cfg, _conn, ch) = common::raw_channel(&env).await?;
    let bodies: [&[u8]; 3] = [b"\xff\xfenot json", br#"{"job_id":"8a6e0804-2bd1-4f3a-a3b6-c8f8e8f0a1b2","owner_id":"8a6e0804-2bd1-4f3a-a3b6-c8f8e8f0a1b2","kind":"teleport","params":{}}"#,
        br#"{"job_id":"8a6e0804-2bd1-4f3a-a3b6-c8f8e8f0a1b3","owner_id":"8a6e0804-2bd1-4f3a-a3b6-c8f8e8f0a1b2","kind":"factorize","params":{"n":"-1"}}"#];
    // On the per-delivery queue and on the batched quick queue.
    for route in ["cpu", "quick"] {
        for body in bodies {
            ch.basic_publish(cfg.jobs_exchange().into(), route.into(), BasicPublishOptions::default(), body, BasicProperties::default()).await?.await?;
        }
    }
    // The worker still runs jobs.
    let id = env.submit_n("91").await?;
    assert_eq!(env.wait_finished(&id).await?["status"], "succeeded");
    // Counted on the worker's health listener, with the dead-letter queue's backlog.
    let health = &env.worker_health[0];
    for reason in ["malformed_message", "invalid_params", "unknown_kind"] {
        let label = format!("reason=\"{reason}\"");
        env.wait_metric(health, "crunch_worker_dead_lettered_total", &label, |v| v == 2.0, Duration::from_secs(10)).await?;
    }
    let dead = format!("queue=\"{}\"", cfg.dead_queue());
    env.wait_metric(health, "crunch_worker_consumer_lag", &dead, |v| v == 6.0, Duration::from_secs(15)).await?;
    assert!(env.service_metric(health, "crunch_worker_messages_total", "outcome=\"acked\"").await? >= 7.0);
    let mut reasons = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while reasons.len() < 6 && Instant::now() < deadline {
        match ch.basic_get(cfg.dead_queue().into(), BasicGetOptions { no_ack: true }).await? {
            Some(msg) => reasons.push(crunch_bus::reason_of(&msg.delivery.properties).unwrap_or_default()),
            None => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    reasons.sort();
    assert_eq!(reasons.len(), 6, "{reasons:?}");
    assert!(reasons[..2].iter().all(|r| r.starts_with("invalid_params")), "{reasons:?}");
    assert!(reasons[2..4].iter().all(|r| r.starts_with("malformed_message")), "{reasons:?}");
    assert!(reasons[4..].iter().all(|r| r.starts_with("unknown_kind") && r.contains("factorize")), "{reasons:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_message_was_lost_is_republished_by_the_reconciler() -> R {
    let env = TestEnv::start_with(Options {
        worker_env: vec![("CRUNCH_UNPUBLISHED_GRACE_SECS".into(), "1".into()), ("CRUNCH_RECONCILE_INTERVAL_MS".into(), "200".into())],
        ..Default::default()
    })
    .await?;
    // A job row as the gateway writes it just before a crash: never published.
    let mut conn = env.db()?;
    let owner = common::key_id(&mut conn)?;
    let spec = crunch_domain::JobSpec::parse("factorize", &json!({"n": "221"}), &Default::default())?;
    let id = uuid::Uuid::new_v4();
    let params = spec.canonical_params();
    let key = spec.dedup_key(owner);
    crunch_store::jobs::submit(&mut conn, crunch_store::models::NewJob { id, owner_id: owner, kind: crunch_domain::JobKind::Factorize, params: &params, dedup_key: &key }, false)?;
    let job = env.wait_finished(&id.to_string()).await?;
    assert_eq!(job["status"], "succeeded");
    assert_eq!(job["result"]["factors"], json!([{"p": "13", "e": 1, "method": "trial_division"}, {"p": "17", "e": 1, "method": "trial_division"}]));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quick_job_started_too_often_is_dead_lettered_by_its_run_count() -> R {
    // The quick queue has no broker delivery limit (prefetched messages
    // returned by a crash would count): the worker counts the row's runs.
    let env = TestEnv::start().await?;
    let mut conn = env.db()?;
    let msg = store_quick_job(&mut conn, "77")?;
    // Started five times (the limit in tests) by workers that died each time;
    // its message comes back once more.
    diesel::sql_query("UPDATE jobs SET status = 'running', attempts = 5 WHERE id = $1").bind::<diesel::sql_types::Uuid, _>(msg.job_id).execute(&mut conn)?;
    publish(&env, &msg).await?;
    let job = env.wait_finished(&msg.job_id.to_string()).await?;
    assert_eq!(job["status"], "failed");
    assert_eq!(job["error"]["code"], "too_many_attempts", "{job}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_message_of_an_ended_quick_job_sends_its_terminal_event_again() -> R {
    // A quick job has no outbox row: if its worker died after the commit and
    // before the events went out, the message comes back and the terminal
    // event is rebuilt from the row, with the same `event_id`.
    let env = TestEnv::start().await?;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{}?access_token={}", env.url("/api/v1/events").replace("http://", "ws://"), env.key)).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut conn = env.db()?;
    let msg = store_quick_job(&mut conn, "91")?;
    diesel::sql_query("UPDATE jobs SET status = 'succeeded', attempts = 1, progress = 1, result = '{\"factors\": [7, 13]}', started_at = now(), finished_at = now() WHERE id = $1")
        .bind::<diesel::sql_types::Uuid, _>(msg.job_id)
        .execute(&mut conn)?;
    let seq: Count = diesel::sql_query("SELECT seq AS n FROM jobs WHERE id = $1").bind::<diesel::sql_types::Uuid, _>(msg.job_id).get_result(&mut conn)?;
    publish(&env, &msg).await?;
    let ev = job_event(&mut ws, msg.job_id, Duration::from_secs(20)).await?.expect("the terminal event again");
    assert_eq!((ev["type"].as_str(), ev["event_id"].as_i64()), (Some("succeeded"), Some(seq.n)), "{ev}");
    assert_eq!(ev["data"], json!({"factors": [7, 13]}));
    // Once more: the gateway drops the copy (same `event_id`).
    publish(&env, &msg).await?;
    assert_eq!(job_event(&mut ws, msg.job_id, Duration::from_secs(3)).await?, None);
    Ok(())
}

/// The next event of job `id` on the WebSocket within `wait`.
async fn job_event<S>(ws: &mut S, id: uuid::Uuid, wait: Duration) -> anyhow::Result<Option<Value>>
where
    S: futures::Stream<Item = Result<tokio_tungstenite::tungstenite::Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let deadline = Instant::now() + wait;
    while let Ok(Some(m)) = tokio::time::timeout_at(deadline.into(), ws.next()).await {
        // Pings and pongs are not events.
        match serde_json::from_str::<Value>(&m?.into_text()?) {
            Ok(ev) if ev["job_id"] == id.to_string() => return Ok(Some(ev)),
            _ => {}
        }
    }
    Ok(None)
}

/// Stores a queued quick factorization job of the test key, unpublished: its message.
fn store_quick_job(conn: &mut diesel::PgConnection, n: &str) -> anyhow::Result<crunch_domain::JobMessage> {
    #[derive(diesel::QueryableByName)]
    struct K {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        id: uuid::Uuid,
    }
    let owner = diesel::sql_query("SELECT id FROM api_keys LIMIT 1").get_result::<K>(conn)?.id;
    let spec = crunch_domain::JobSpec::parse("factorize", &json!({"n": n}), &Default::default())?;
    let id = uuid::Uuid::new_v4();
    let (params, key) = (spec.canonical_params(), spec.dedup_key(owner));
    crunch_store::jobs::submit(conn, crunch_store::models::NewJob { id, owner_id: owner, kind: crunch_domain::JobKind::Factorize, params: &params, dedup_key: &key }, false)?;
    let msg = crunch_domain::JobMessage::new(id, owner, spec);
    assert!(msg.is_quick());
    Ok(msg)
}

/// Publishes a job message as the gateway would.
async fn publish(env: &TestEnv, msg: &crunch_domain::JobMessage) -> R {
    let cfg = crunch_e2e::gateway_config(&env.database_url, &crunch_e2e::amqp_url(), &env.namespace, 4096).core.amqp.bus_config();
    let bus = crunch_bus::Bus::connect(&cfg, "test").await?;
    bus.publish_job(msg).await?;
    bus.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_endpoints_and_openapi_document_every_route() -> R {
    let env = TestEnv::start().await?;
    let id = env.submit_n("12").await?;
    env.wait_finished(&id).await?;
    let h = env.http.get(env.url("/healthz")).send().await?;
    assert_eq!(h.status(), 200);
    // Behind a key.
    let anonymous = env.http.get(env.url("/metrics")).send().await?;
    assert_eq!(anonymous.status(), 401);
    let m = env.http.get(env.url("/metrics")).bearer_auth(&env.key).send().await?.text().await?;
    assert!(m.contains("crunch_http_requests_total"), "{m}");
    assert!(m.contains("crunch_jobs{kind=\"factorize\",status=\"succeeded\"} 1"), "{m}");
    assert!(m.contains("crunch_queue_depth"), "{m}");
    let spec: Value = env.http.get(env.url("/api-docs/openapi.json")).send().await?.json().await?;
    for path in ["/api/v1/jobs", "/api/v1/jobs/{id}", "/api/v1/events", "/healthz", "/readyz", "/metrics"] {
        assert!(spec["paths"].get(path).is_some(), "{path} missing from the OpenAPI document");
    }
    let docs = env.http.get(env.url("/docs/")).send().await?;
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await?.contains("swagger"));
    let dash = env.http.get(env.url("/")).send().await?;
    assert!(dash.headers()["content-security-policy"].to_str()?.contains("script-src 'self'"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_gateway_replica_delivers_every_event_to_its_own_clients() -> R {
    let env = TestEnv::start().await?;
    // A second replica on the same database and namespace.
    let cfg = crunch_e2e::gateway_config(&env.database_url, &crunch_e2e::amqp_url(), &env.namespace, 65536);
    let second = crunch_e2e::Gateway::start(cfg).await?;
    let second_base = format!("ws://127.0.0.1:{}/api/v1/events", second.port);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (mut ws2, _) = tokio_tungstenite::connect_async(format!("{second_base}?access_token={}", env.key)).await?;
    let first_base = env.url("/api/v1/events").replace("http://", "ws://");
    let (mut ws1, _) = tokio_tungstenite::connect_async(format!("{first_base}?access_token={}", env.key)).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Submitted through the first replica.
    let id = env.submit_n("4096").await?;
    for ws in [&mut ws1, &mut ws2] {
        let mut got_succeeded = false;
        let deadline = Instant::now() + Duration::from_secs(15);
        while !got_succeeded && Instant::now() < deadline {
            if let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
                if let Ok(text) = msg.into_text() {
                    let ev: Value = serde_json::from_str(&text)?;
                    got_succeeded = ev["type"] == "succeeded" && ev["job_id"] == id.as_str();
                }
            }
        }
        assert!(got_succeeded, "a replica's client missed the succeeded event");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_key_from_the_configuration_is_registered_at_start_up() -> R {
    let env = TestEnv::start().await?;
    let admin = crunch_gateway::auth::generate_key();
    let mut cfg = crunch_e2e::gateway_config(&env.database_url, &crunch_e2e::amqp_url(), &env.namespace, 65536);
    cfg.admin_api_key = Some(admin.clone().into());
    let app = crunch_e2e::Gateway::start(cfg.clone()).await?;
    let base = app.base();
    let r = env.http.get(format!("{base}/api/v1/jobs")).bearer_auth(&admin).send().await?;
    assert_eq!(r.status(), 200);
    // A second start-up (another replica) finds it registered: no error, no duplicate.
    let again = crunch_gateway::Application::build(cfg).await?;
    drop(again);
    let mut conn = env.db()?;
    let n: Count = diesel::sql_query("SELECT count(*) AS n FROM api_keys WHERE name = 'admin'").get_result(&mut conn)?;
    assert_eq!(n.n, 1);
    Ok(())
}
