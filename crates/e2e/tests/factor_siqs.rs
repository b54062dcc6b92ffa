//! Large factorizations through the whole pipeline: the quadratic sieve's
//! progress reaches the job, cancel stops it within a second, the time budget
//! ends it with the partial result; ECM on a big number says its level and
//! curves in the job and on its progress events, and finds a 20-digit factor
//! of a 100-digit number.

use std::time::{Duration, Instant};

use crunch_e2e::{Options, TestEnv};
use futures::StreamExt;
use serde_json::{json, Value};

type R = anyhow::Result<()>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_siqs_job_reports_progress_and_stops_on_cancel() -> R {
    let env = TestEnv::start().await?;
    let r = env.submit(json!({"kind": "factorize", "params": {"n": crunch_e2e::mersenne_semiprime(107, 127)}})).await?;
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await?["id"].as_str().unwrap_or_default().to_owned();
    // Relations found / needed move the job's progress.
    let t = Instant::now();
    loop {
        let job = env.get_job(&id).await?;
        if job["progress"].as_f64().unwrap_or(0.0) > 0.05 {
            break;
        }
        anyhow::ensure!(t.elapsed() < Duration::from_secs(60), "no sieve progress: {job}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cancelled_at = Instant::now();
    let r = env.http.delete(env.url(&format!("/api/v1/jobs/{id}"))).bearer_auth(&env.key).send().await?;
    assert_eq!(r.status(), 200);
    // The worker stops sieving: the next job runs promptly.
    let small = env.submit_n("1000").await?;
    let done = env.wait_finished(&small).await?;
    assert_eq!(done["status"], "succeeded");
    assert!(cancelled_at.elapsed() < Duration::from_secs(3), "the sieve kept the worker busy for {:?}", cancelled_at.elapsed());
    assert_eq!(env.get_job(&id).await?["status"], "cancelled");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn siqs_factors_are_reported_and_the_budget_reports_partial_results() -> R {
    let env = TestEnv::start_with(Options {
        worker_env: vec![("CRUNCH_JOB_TIME_BUDGET_SECS".into(), "2".into()), ("CRUNCH_WORKER_PREFETCH".into(), "1".into())],
        ..Default::default()
    })
    .await?;
    // 2^89-1 times 2^61-1 times 3: solved quickly; the big part by the sieve engine.
    let n = crunch_e2e::mersenne(89) * crunch_e2e::mersenne(61) * 3u32;
    let id = env.submit_n(&n.to_str_radix(10)).await?;
    let job = env.wait_finished(&id).await?;
    assert_eq!(job["status"], "succeeded", "{job}");
    let factors = job["result"]["factors"].as_array().cloned().unwrap_or_default();
    let ps: Vec<&str> = factors.iter().filter_map(|f| f["p"].as_str()).collect();
    assert_eq!(ps, ["3", "2305843009213693951", "618970019642690137449562111"]);
    assert!(factors.iter().all(|f| f["method"].as_str().is_some()), "{job}");

    // A 234-bit semiprime does not fit a 2 s budget: failed with what is left.
    let started = Instant::now();
    let id = env.submit_n(&(crunch_e2e::mersenne(107) * crunch_e2e::mersenne(127) * 5u32).to_str_radix(10)).await?;
    let job = env.wait_finished(&id).await?;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["error"]["code"], "time_budget_exceeded");
    assert_eq!(job["error"]["details"]["factors"][0]["p"], "5");
    assert_eq!(job["error"]["details"]["unfactored"][0], crunch_e2e::mersenne_semiprime(107, 127).as_str());
    assert!(started.elapsed() < Duration::from_secs(8), "budget honoured: {:?}", started.elapsed());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecm_says_its_level_live_and_finds_a_20_digit_factor() -> R {
    let env = TestEnv::start().await?;
    let url = env.url("/api/v1/events").replace("http://", "ws://");
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{url}?access_token={}", env.key)).await?;
    // (2^521 - 1)(2^127 - 1): 196 digits, out of the sieve's range, with a
    // 39-digit factor ECM would need days for.
    let big = crunch_e2e::mersenne_semiprime(521, 127);
    let id = env.submit_n(&big).await?;
    let t = Instant::now();
    let stage = loop {
        let job = env.get_job(&id).await?;
        if let Some(s) = job["stage"].as_str().filter(|s| s.starts_with("ECM p")) {
            break s.to_owned();
        }
        anyhow::ensure!(t.elapsed() < Duration::from_secs(30), "no ECM stage: {job}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(stage.contains(" curves (B1 = ") && stage.ends_with("on a 196-digit cofactor"), "{stage}");
    // The same text on the progress events.
    let t = Instant::now();
    loop {
        anyhow::ensure!(t.elapsed() < Duration::from_secs(20), "no progress event with the stage");
        let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await else { continue };
        let Ok(text) = msg.into_text() else { continue };
        let ev: Value = serde_json::from_str(&text)?;
        if ev["job_id"] == id.as_str() && ev["type"] == "progress" && ev["data"]["stage"].as_str().is_some_and(|s| s.starts_with("ECM p")) {
            break;
        }
    }
    let r = env.http.delete(env.url(&format!("/api/v1/jobs/{id}"))).bearer_auth(&env.key).send().await?;
    assert_eq!(r.status(), 200);
    let job = env.wait_finished(&id).await?;
    assert_eq!(job["status"], "cancelled");
    assert!(job.get("stage").is_none(), "no stage once ended: {job}");

    // The number: a 20-digit factor of a 100-digit number, by ECM.
    let n = "1207418744665826110257942042212963297643078516519607888581393971612705489332791174062219625915976109";
    let id = env.submit_n(n).await?;
    let job = env.wait_finished(&id).await?;
    assert_eq!(job["status"], "succeeded", "{job}");
    let ps: Vec<&str> = job["result"]["factors"].as_array().into_iter().flatten().filter_map(|f| f["p"].as_str()).collect();
    assert_eq!(ps, ["17485029721327973713", "69054429069287486672210540816423036187859288681522642757592834861726067084961693"]);
    assert_eq!(job["result"]["method"], "ecm");
    Ok(())
}
