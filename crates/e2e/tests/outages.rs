//! RabbitMQ and PostgreSQL outages, played with a TCP proxy in front of each:
//! while one is down the gateway answers 503 quickly and stores nothing; when
//! it is back, gateway and worker reconnect by themselves and jobs flow again.

use std::time::{Duration, Instant};

use crunch_e2e::{Options, Proxy, TestEnv};
use serde_json::{json, Value};

async fn ready_within(env: &TestEnv, limit: Duration) -> anyhow::Result<Duration> {
    let t = Instant::now();
    while t.elapsed() < limit {
        if env.http.get(env.url("/readyz")).send().await?.status() == 200 {
            return Ok(t.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("not ready within {limit:?}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_reconnect_by_themselves_after_broker_and_database_outages() -> anyhow::Result<()> {
    let amqp = Proxy::start("127.0.0.1:5672").await?;
    let pg = Proxy::start("127.0.0.1:5432").await?;
    let db = crunch_e2e::fresh_database()?;
    let db_name = db.rsplit('/').next().unwrap_or_default().to_owned();
    let amqp_url = format!("amqp://guest:guest@127.0.0.1:{}/%2f", amqp.port);
    let db_url = format!("postgres://postgres@127.0.0.1:{}/{db_name}", pg.port);
    let env = TestEnv::start_with(Options {
        database_url: Some(db),
        gateway_amqp_url: Some(amqp_url.clone()),
        gateway_db_url: Some(db_url.clone()),
        worker_env: vec![("AMQP_URL".into(), amqp_url), ("DATABASE_URL".into(), db_url)],
        ..Default::default()
    })
    .await?;
    ready_within(&env, Duration::from_secs(20)).await?;
    let id = env.submit_n("101").await?;
    assert_eq!(env.wait_finished(&id).await?["status"], "succeeded");

    // RabbitMQ goes away.
    amqp.cut();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t = Instant::now();
    let r = env.submit(json!({"kind": "factorize", "params": {"n": "102"}})).await?;
    assert_eq!(r.status(), 503);
    assert!(t.elapsed() < Duration::from_secs(3), "503 took {:?}", t.elapsed());
    assert_eq!(env.http.get(env.url("/readyz")).send().await?.status(), 503);
    let list: Value = env.http.get(env.url("/api/v1/jobs")).bearer_auth(&env.key).send().await?.json().await?;
    assert_eq!(list["items"].as_array().map(|a| a.len()), Some(1), "nothing stored for the refused job");
    amqp.restore();
    let took = ready_within(&env, Duration::from_secs(15)).await?;
    eprintln!("gateway ready again {took:?} after RabbitMQ came back");
    let id = env.submit_n("103").await?;
    let job = env.wait_for(&id, Duration::from_secs(15), |s| s == "succeeded").await?;
    assert_eq!(job["result"]["factors"][0]["p"], "103", "the worker reconnected too");

    // PostgreSQL goes away.
    pg.cut();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = Instant::now();
    let r = env.submit(json!({"kind": "factorize", "params": {"n": "104"}})).await?;
    assert_eq!(r.status(), 503);
    assert!(t.elapsed() < Duration::from_secs(3), "503 took {:?}", t.elapsed());
    let err: Value = r.json().await?;
    assert_eq!(err["error"]["code"], "service_unavailable");
    pg.restore();
    let took = ready_within(&env, Duration::from_secs(15)).await?;
    eprintln!("gateway ready again {took:?} after PostgreSQL came back");
    let id = env.submit_n("105").await?;
    let job = env.wait_for(&id, Duration::from_secs(15), |s| s == "succeeded").await?;
    assert_eq!(job["result"]["factors"].as_array().map(|a| a.len()), Some(3));
    Ok(())
}
