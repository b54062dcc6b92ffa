//! Hostile input at the entries that are not HTTP, with fixed seeds and
//! bounded time: a thousand messages of arbitrary bytes and of the right
//! shape with wrong contents into each job queue and into the selections
//! topic, arbitrary bytes as gene files of every format, and scrapes of a
//! site that answers with arbitrary HTML, oversized and lying pages.
//! Invariants: no consumer stops (a good message after them is handled
//! within seconds), every bad message is dead-lettered with a reason or
//! ends its job with a clear error, nothing valid is lost.

mod common;

use std::time::{Duration, Instant};

use crunch_e2e::TestEnv;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

type R = anyhow::Result<()>;

const BAD_MESSAGES: usize = 1000;

/// What most bytes of a fuzzed gene file are drawn from.
const ALPHABET: &[u8] = b">@+,ACGTN\n\r\"\0";

/// A message that is not a valid job or selection: arbitrary bytes, or JSON
/// of about the right shape with wrong types and values.
fn hostile(rng: &mut StdRng) -> Vec<u8> {
    let uuid = || uuid::Uuid::new_v4().to_string();
    let junk = |rng: &mut StdRng| -> Value {
        match rng.gen_range(0..9) {
            0 => Value::Null,
            1 => json!(rng.gen::<i64>()),
            2 => json!(rng.gen::<f64>() * 1e300),
            3 => json!("\u{0}\u{ffff}<script>"),
            4 => json!([1, [2, [3, [4]]]]),
            5 => json!({"n": "-1"}),
            6 => json!("9".repeat(rng.gen_range(1..2000))),
            7 => json!({"from": "x", "to": -5, "mode": "both"}),
            _ => json!(uuid()),
        }
    };
    match rng.gen_range(0..6) {
        0 => (0..rng.gen_range(0..300)).map(|_| rng.gen::<u8>()).collect(),
        1 => b"{\"job_id\":".to_vec(),
        2 => json!({"job_id": junk(rng), "owner_id": uuid(), "kind": "factorize", "params": {"n": "12"}}).to_string().into_bytes(),
        3 => json!({"job_id": uuid(), "owner_id": uuid(), "kind": junk(rng), "params": junk(rng)}).to_string().into_bytes(),
        4 => {
            let kind = ["factorize", "primes", "nth_prime", "check_url", "scrape_hotels", "genes"][rng.gen_range(0..6)];
            json!({"job_id": uuid(), "owner_id": uuid(), "kind": kind, "params": junk(rng)}).to_string().into_bytes()
        }
        _ => json!({"owner_id": junk(rng), "op": junk(rng), "hotel_ids": junk(rng), "at": junk(rng)}).to_string().into_bytes(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_job_queue_survives_a_thousand_hostile_messages() -> R {
    use crunch_bus::lapin::options::{BasicGetOptions, BasicPublishOptions};
    use crunch_bus::lapin::BasicProperties;
    let env = TestEnv::start().await?;
    let (cfg, _conn, ch) = common::raw_channel(&env).await?;
    let mut rng = StdRng::seed_from_u64(20);
    let routes = [crunch_bus::CPU_ROUTE, crunch_bus::IO_ROUTE, crunch_bus::QUICK_ROUTE];
    for route in routes {
        for _ in 0..BAD_MESSAGES {
            let body = hostile(&mut rng);
            ch.basic_publish(cfg.jobs_exchange().into(), route.into(), BasicPublishOptions::default(), &body, BasicProperties::default()).await?.await?;
        }
    }
    // Good jobs after them, on the quick and the CPU queue, are run.
    let t = Instant::now();
    let quick = env.submit_n("91").await?;
    let cpu = env.submit_n(&crunch_e2e::mersenne_semiprime(61, 61)).await?;
    for id in [quick, cpu] {
        assert_eq!(env.wait_for(&id, Duration::from_secs(60), |s| matches!(s, "succeeded" | "failed")).await?["status"], "succeeded");
    }
    eprintln!("good jobs done {:?} after the bad messages", t.elapsed());
    // Every bad message is in the dead-letter queue with a reason.
    let mut reasons = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while reasons < routes.len() * BAD_MESSAGES && Instant::now() < deadline {
        match ch.basic_get(cfg.dead_queue().into(), BasicGetOptions { no_ack: true }).await? {
            Some(msg) => {
                let reason = crunch_bus::reason_of(&msg.delivery.properties).unwrap_or_default();
                assert!(!reason.is_empty(), "a dead letter without a reason");
                reasons += 1;
            }
            None => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert_eq!(reasons, routes.len() * BAD_MESSAGES);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_selections_topic_survives_a_thousand_hostile_messages() -> R {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    use rdkafka::ClientConfig;
    let mut env = TestEnv::start_with(crunch_e2e::Options { workers: 0, ..Default::default() }).await?;
    env.spawn_persister()?;
    let mut conn = env.db()?;
    let hotel = crunch_store::hotels::upsert_hotel(&mut conn, &common::bare_hotel("fixture", "fuzz", "Fuzz"))?;
    let k = crunch_e2e::kafka_args(&env.namespace);
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", &k.kafka_brokers).create()?;
    let mut rng = StdRng::seed_from_u64(21);
    for _ in 0..BAD_MESSAGES {
        let body = hostile(&mut rng);
        producer.send(FutureRecord::to(&k.kafka_topic_selections).key("fuzz").payload(&body), Duration::from_secs(5)).await.map_err(|(e, _)| e)?;
    }
    // A good selection after them is stored within seconds.
    let t = Instant::now();
    let r = env.http.post(env.url("/api/v1/selections")).bearer_auth(&env.key).json(&json!({"hotel_ids": [hotel]})).send().await?;
    assert_eq!(r.status(), 202);
    loop {
        let page: Value = env.http.get(env.url("/api/v1/selections")).bearer_auth(&env.key).send().await?.json().await?;
        if page["total"] == 1 {
            break;
        }
        anyhow::ensure!(t.elapsed() < Duration::from_secs(60), "the good selection was not stored within 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("the good selection was stored {:?} after the bad messages", t.elapsed());
    // Every bad message is on the dead-letter topic with a reason.
    let reasons = crunch_e2e::dead_letter_reasons(&env.namespace, BAD_MESSAGES, Duration::from_secs(90))?;
    assert_eq!(reasons.len(), BAD_MESSAGES);
    assert!(reasons.iter().all(|r| !r.is_empty()), "a dead letter without a reason");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arbitrary_bytes_as_gene_files_end_clearly() -> R {
    let env = TestEnv::start().await?;
    let mut rng = StdRng::seed_from_u64(22);
    for (i, name) in ["a.fasta", "a.fastq", "a.csv", "a.fasta.gz", "a.fastq.gz", "a.csv.gz"].iter().cycle().take(18).enumerate() {
        let len = rng.gen_range(1..20_000);
        // Mostly sequence-like bytes with some of anything, so that parsers go deep.
        let bytes: Vec<u8> = (0..len)
            .map(|_| if rng.gen_bool(0.8) { ALPHABET[rng.gen_range(0..ALPHABET.len())] } else { rng.gen() })
            .collect();
        let r = env.http.post(env.url("/api/v1/gene-files")).bearer_auth(&env.key).json(&json!({"file_name": name})).send().await?;
        assert_eq!(r.status(), 201, "{name}");
        let file: Value = r.json().await?;
        let id = file["id"].as_str().unwrap_or_default().to_owned();
        let r = env.http.put(env.url(&format!("/api/v1/gene-files/{id}/content"))).bearer_auth(&env.key).body(bytes).send().await?;
        assert_eq!(r.status(), 202, "{name}");
        let job_id = r.json::<Value>().await?["job"]["id"].as_str().unwrap_or_default().to_owned();
        let job = env.wait_for(&job_id, Duration::from_secs(60), |s| matches!(s, "succeeded" | "failed")).await?;
        // Succeeded (invalid records skipped), or failed with a clear code:
        // never a crash, a retry loop or an internal error.
        if job["status"] == "failed" {
            let code = job["error"]["code"].as_str().unwrap_or_default();
            assert!(!matches!(code, "too_many_attempts" | "internal_error" | "kernel_panicked"), "file {i} ({name}): {job}");
        }
    }
    // The worker still runs jobs.
    let id = env.submit_n("1001").await?;
    assert_eq!(env.wait_finished(&id).await?["status"], "succeeded");
    Ok(())
}

/// Scrapes of a site that answers with arbitrary HTML and bytes, hostile
/// values in the right JSON, oversized pages and lying responses
/// (`crunch_e2e::HostileSite`): every scrape ends, succeeded or failed with
/// a code, in bounded time; only well-formed hotels of that site are stored,
/// with links on that site only; a good scrape afterwards works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_of_a_hostile_site_end_clearly_and_store_only_sane_hotels() -> R {
    use diesel::RunQueryDsl;
    const SCRAPES: u32 = 200;
    let site = crunch_e2e::HostileSite::start(23).await?;
    let good = crunch_e2e::HotelSite::start(Duration::ZERO).await?;
    let profile = crunch_e2e::hotel_profile(json!({"Testville": "/Hotels-g1-Testville-Hotels.html"}))?;
    let mut env = TestEnv::start_with(crunch_e2e::Options { worker_env: crunch_e2e::hotel_site_worker_env(good.port, &profile), ..Default::default() }).await?;
    let origin = format!("http://127.0.0.1:{}", site.port);
    let mut ids = Vec::new();
    for case in 1..=SCRAPES {
        let params = json!({"start_url": format!("{origin}/Hotels-g{case}-Fuzz-Hotels.html"), "pages": 2, "details": true});
        let r = env.submit(json!({"kind": "scrape_hotels", "params": params})).await?;
        assert_eq!(r.status(), 202);
        ids.push(r.json::<Value>().await?["id"].as_str().unwrap_or_default().to_owned());
    }
    let t = Instant::now();
    let (mut succeeded, mut stored) = (0, 0);
    for id in &ids {
        let job = env.wait_for(id, Duration::from_secs(180), |s| s == "succeeded" || s == "failed").await?;
        if job["status"] == "succeeded" {
            succeeded += 1;
            stored += job["result"]["hotels"].as_u64().unwrap_or(0);
            assert_eq!(job["result"]["source"], format!("127.0.0.1:{}", site.port), "{job}");
        } else {
            let code = job["error"]["code"].as_str().unwrap_or("");
            assert!(!code.is_empty() && code != "too_many_attempts" && code != "internal", "{job}");
        }
    }
    let served = site.served.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("{SCRAPES} hostile scrapes ({served} pages served) ended in {:?}: {succeeded} succeeded, {stored} hotels stored", t.elapsed());
    assert!(succeeded > 0 && stored > 0, "the generator should let some hotels through");

    #[derive(diesel::QueryableByName, Debug)]
    struct Stored {
        #[diesel(sql_type = diesel::sql_types::Text)]
        source_id: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        url: Option<String>,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        description: Option<String>,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Double>)]
        rating: Option<f64>,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Double>)]
        stars: Option<f64>,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Integer>)]
        reviews: Option<i32>,
    }
    let rows: Vec<Stored> = diesel::sql_query("SELECT source_id, name, url, description, rating, stars, reviews FROM hotels WHERE source = $1")
        .bind::<diesel::sql_types::Text, _>(format!("127.0.0.1:{}", site.port))
        .load(&mut env.db()?)?;
    assert!(!rows.is_empty());
    for h in &rows {
        assert!((1..=64).contains(&h.source_id.len()) && h.source_id.bytes().all(|b| b.is_ascii_graphic()), "{h:?}");
        assert!(!h.name.trim().is_empty() && h.name.chars().count() <= 300, "{h:?}");
        assert!(h.url.as_deref().is_none_or(|u| u.starts_with(&format!("{origin}/"))), "{h:?}");
        assert!(h.description.as_deref().is_none_or(|d| d.chars().count() <= 20_000), "{h:?}");
        assert!([h.rating, h.stars].iter().flatten().all(|r| (0.0..=5.0).contains(r)), "{h:?}");
        assert!(h.reviews.is_none_or(|n| n >= 0), "{h:?}");
    }

    // The worker is up and scrapes a good site.
    assert!(env.workers[0].try_wait()?.is_none(), "the worker exited");
    let r = env.submit(json!({"kind": "scrape_hotels", "params": {"city": "Testville", "pages": 1, "details": false}})).await?;
    let id = r.json::<Value>().await?["id"].as_str().unwrap_or_default().to_owned();
    let job = env.wait_for(&id, Duration::from_secs(30), |s| s == "succeeded" || s == "failed").await?;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["result"]["hotels"], 30, "{job}");
    Ok(())
}
