//! Selections through Kafka: gateway -> topic -> persister -> PostgreSQL, with
//! tansu (a real Kafka-protocol broker) and the real rdkafka client.

mod common;

use std::time::{Duration, Instant};

use crunch_e2e::TestEnv;
use crunch_store::hotels::NewHotel;
use diesel::sql_types::BigInt;
use diesel::RunQueryDsl;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use serde_json::{json, Value};

type R = anyhow::Result<()>;

fn hotel(i: i64, city: Option<i32>) -> NewHotel {
    NewHotel {
        source: "fixture".into(),
        source_id: format!("h{i}"),
        city_id: city,
        name: format!("Hotel {i:05}"),
        url: Some(format!("/Hotel_Review-{i}")),
        description: Some(format!("Quiet rooms by the {} market", if i % 2 == 0 { "Spice" } else { "Gold" })),
        rating: Some((i % 5) as f64 + 0.5),
        reviews: Some(i as i32 * 10),
        rank: Some(i as i32),
        rank_total: Some(100),
        stars: Some(4.0),
    }
}

async fn selections(env: &TestEnv, query: &str) -> anyhow::Result<Value> {
    Ok(env.http.get(env.url(&format!("/api/v1/selections{query}"))).bearer_auth(&env.key).send().await?.json().await?)
}

async fn wait_total(env: &TestEnv, want: i64, within: Duration) -> anyhow::Result<Value> {
    let t = Instant::now();
    loop {
        let page = selections(env, "?limit=100").await?;
        if page["total"] == want {
            return Ok(page);
        }
        anyhow::ensure!(t.elapsed() < within, "selections total {} after {within:?}, wanted {want}", page["total"]);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selections_travel_through_kafka_idempotently_and_poison_is_dead_lettered() -> R {
    let mut env = TestEnv::start().await?;
    env.spawn_persister()?;
    let mut conn = env.db()?;
    let dubai: i32 = {
        let (cities, _) = crunch_store::hotels::cities(&mut conn, Some("dubai"), 10)?;
        cities[0].id
    };
    let ids: Vec<i64> = (1..=5).map(|i| crunch_store::hotels::upsert_hotel(&mut conn, &hotel(i, Some(dubai)))).collect::<Result<_, _>>()?;

    // The catalogue and the hotel listing.
    let cities: Value = env.http.get(env.url("/api/v1/cities?q=dub")).send().await?.json().await?;
    assert_eq!(cities["items"][0]["name"], "Dubai");
    let hotels: Value = env.http.get(env.url(&format!("/api/v1/hotels?city={dubai}&order=-rating&limit=2"))).send().await?.json().await?;
    assert_eq!(hotels["total"], 5);
    assert_eq!(hotels["items"][0]["rating"], 4.5);
    assert_eq!(env.http.get(env.url("/api/v1/hotels?order=price")).send().await?.status(), 400);
    // Search matches the name or the description, any case; LIKE's
    // wildcards in it are plain characters.
    for (q, want) in [("spice", 2), ("SPICE MAR", 2), ("00004", 1), ("market", 5), ("%25", 0), ("o_d", 0)] {
        let page: Value = env.http.get(env.url(&format!("/api/v1/hotels?q={q}"))).send().await?.json().await?;
        assert_eq!(page["total"], want, "{q}: {page}");
    }
    // One hotel; ids that name none are 404.
    let one: Value = env.http.get(env.url(&format!("/api/v1/hotels/{}", ids[2]))).send().await?.json().await?;
    assert_eq!((one["id"].as_i64(), one["name"].as_str()), (Some(ids[2]), Some("Hotel 00003")), "{one}");
    for missing in ["987654321".to_owned(), "0".into(), "-3".into(), "abc".into()] {
        let r = env.http.get(env.url(&format!("/api/v1/hotels/{missing}"))).send().await?;
        assert_eq!(r.status(), 404, "{missing}");
    }

    let r = env.http.post(env.url("/api/v1/selections")).bearer_auth(&env.key).json(&json!({"hotel_ids": [ids[0], ids[1], ids[2]]})).send().await?;
    assert_eq!(r.status(), 202);
    wait_total(&env, 3, Duration::from_secs(30)).await?;
    // One selection, with when it was selected; a hotel not selected is 404.
    let picked: Value = env.http.get(env.url(&format!("/api/v1/selections/{}", ids[0]))).bearer_auth(&env.key).send().await?.json().await?;
    assert_eq!((picked["id"].as_i64(), picked["selected_at"].is_string()), (Some(ids[0]), true), "{picked}");
    let r = env.http.get(env.url(&format!("/api/v1/selections/{}", ids[4]))).bearer_auth(&env.key).send().await?;
    assert_eq!(r.status(), 404);
    assert_eq!(env.http.get(env.url(&format!("/api/v1/selections/{}", ids[0]))).send().await?.status(), 401);
    // The same selection again, and a removal.
    env.http.post(env.url("/api/v1/selections")).bearer_auth(&env.key).json(&json!({"hotel_ids": [ids[0]]})).send().await?;
    let r = env.http.delete(env.url(&format!("/api/v1/selections/{}", ids[1]))).bearer_auth(&env.key).send().await?;
    assert_eq!(r.status(), 202);
    let page = wait_total(&env, 2, Duration::from_secs(30)).await?;
    let names: Vec<&str> = page["items"].as_array().expect("items").iter().map(|h| h["name"].as_str().unwrap_or("")).collect();
    assert!(names.contains(&"Hotel 00001") && names.contains(&"Hotel 00003"), "{names:?}");
    let searched = selections(&env, "?q=00003&order=name").await?;
    assert_eq!(searched["total"], 1);
    let searched = selections(&env, "?q=gold%20market").await?;
    assert_eq!(searched["total"], 2, "{searched}");

    // An unknown hotel id is refused by the API (404: it names no hotel),
    // and nothing is sent.
    let r = env.http.post(env.url("/api/v1/selections")).bearer_auth(&env.key).json(&json!({"hotel_ids": [987654321, ids[3]]})).send().await?;
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await?;
    assert_eq!(body["error"]["details"]["unknown_hotel_ids"], json!([987654321]), "{body}");

    // Poison straight into the topic: garbage; an owner without an API key
    // (a foreign key violation); a time PostgreSQL cannot store; an unknown
    // hotel beside a known one (the known one is stored).
    let owner = common::key_id(&mut conn)?;
    let message = |owner_id, hotel_ids: Vec<i64>, at| {
        serde_json::to_vec(&crunch_domain::SelectionMessage { owner_id, op: crunch_domain::SelectionOp::Add, hotel_ids, at }).expect("json")
    };
    let now = chrono::Utc::now();
    let ancient = chrono::NaiveDate::from_ymd_opt(-5000, 1, 1).expect("date").and_hms_opt(0, 0, 0).expect("time").and_utc();
    let k = crunch_e2e::kafka_args(&env.namespace);
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", &k.kafka_brokers).create()?;
    for payload in [
        b"{not json".to_vec(),
        message(uuid::Uuid::new_v4(), vec![ids[3]], now),
        message(owner, vec![ids[3]], ancient),
        message(owner, vec![987654321, ids[3]], now),
    ] {
        producer.send(FutureRecord::to(&k.kafka_topic_selections).key("x").payload(&payload), Duration::from_secs(5)).await.map_err(|(e, _)| e)?;
    }
    // Consumption goes on after them.
    env.http.post(env.url("/api/v1/selections")).bearer_auth(&env.key).json(&json!({"hotel_ids": [ids[4]]})).send().await?;
    wait_total(&env, 4, Duration::from_secs(30)).await?;
    let mut reasons = crunch_e2e::dead_letter_reasons(&env.namespace, 4, Duration::from_secs(30))?;
    reasons.sort();
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert!(reasons[0].starts_with("malformed: "), "{reasons:?}");
    assert!(reasons[1].starts_with("refused_by_database: ForeignKeyViolation"), "{reasons:?}");
    assert!(reasons[2].starts_with("refused_by_database: Unknown"), "{reasons:?}");
    assert!(reasons[3].starts_with("unknown_hotel_ids: [987654321]"), "{reasons:?}");
    // Counted by reason on the persister's health listener.
    let health = &env.persister_health[0];
    for (reason, n) in [("malformed", 1.0), ("refused_by_database", 2.0), ("unknown_hotel_ids", 1.0)] {
        let label = format!("reason=\"{reason}\"");
        assert_eq!(env.service_metric(health, "crunch_persister_dead_lettered_total", &label).await?, n, "{reason}");
    }

    // Bad requests.
    for body in [json!({"hotel_ids": []}), json!({"hotel_ids": [-1]}), json!({"ids": [1]})] {
        let r = env.http.post(env.url("/api/v1/selections")).bearer_auth(&env.key).json(&body).send().await?;
        assert_eq!(r.status(), 400, "{body}");
    }
    assert_eq!(env.http.post(env.url("/api/v1/selections")).json(&json!({"hotel_ids": [1]})).send().await?.status(), 401);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persister_killed_mid_stream_stores_every_selection_exactly_once() -> R {
    let mut env = TestEnv::start_with(crunch_e2e::Options { workers: 0, ..Default::default() }).await?;
    let mut conn = env.db()?;
    diesel::sql_query(
        "INSERT INTO hotels (source, source_id, name) SELECT 'bulk', g::text, 'Bulk ' || g FROM generate_series(1, 5000) g",
    )
    .execute(&mut conn)?;
    let owners: Vec<uuid::Uuid> = (0..4)
        .map(|i| crunch_store::keys::insert_key(&mut conn, &format!("o{i}"), format!("hash-{i}").as_bytes()).map(|k| k.id))
        .collect::<Result<_, _>>()?;
    let hotel_ids: Vec<i64> = {
        #[derive(diesel::QueryableByName)]
        struct Id {
            #[diesel(sql_type = BigInt)]
            id: i64,
        }
        diesel::sql_query("SELECT id FROM hotels WHERE source = 'bulk' ORDER BY id").load::<Id>(&mut conn)?.into_iter().map(|r| r.id).collect()
    };
    env.spawn_persister()?;
    // 20,000 messages (4 owners x 5,000 hotels), every 10th sent twice.
    let k = crunch_e2e::kafka_args(&env.namespace);
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", &k.kafka_brokers).set("linger.ms", "5").create()?;
    // wait for the topic (the persister creates it)
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut sends = Vec::new();
    for (o, owner) in owners.iter().enumerate() {
        for (h, hid) in hotel_ids.iter().enumerate() {
            let msg = json!({"owner_id": owner, "op": "add", "hotel_ids": [hid], "at": chrono::Utc::now()});
            let payload = msg.to_string();
            let key = owner.to_string();
            let copies = if (o * 5000 + h) % 10 == 0 { 2 } else { 1 };
            for _ in 0..copies {
                let producer = producer.clone();
                let (payload, key, topic) = (payload.clone(), key.clone(), k.kafka_topic_selections.clone());
                sends.push(tokio::spawn(async move {
                    producer.send(FutureRecord::to(&topic).key(&key).payload(&payload), Duration::from_secs(30)).await.map(|_| ()).map_err(|(e, _)| e)
                }));
            }
        }
        if o == 1 {
            // Kill the persister while it consumes, then start another.
            tokio::time::sleep(Duration::from_millis(300)).await;
            env.kill_persister(0);
            env.spawn_persister()?;
        }
    }
    for s in sends {
        s.await??;
    }
    let t = Instant::now();
    loop {
        let n: Count = diesel::sql_query("SELECT count(*) AS n FROM selections").get_result(&mut conn)?;
        if n.n == 20_000 {
            break;
        }
        anyhow::ensure!(t.elapsed() < Duration::from_secs(90), "{} selections stored after 90 s", n.n);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let n: Count = diesel::sql_query("SELECT count(*) AS n FROM selections").get_result(&mut conn)?;
    assert_eq!(n.n, 20_000, "every selection exactly once (the primary key forbids duplicates)");
    Ok(())
}

/// The persister's consumer lag is what waits to be stored: while its table
/// is locked, selections pile up in the topic and the lag shows them; once
/// the lock goes, they are stored and the lag returns to 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_persisters_lag_shows_selections_waiting_to_be_stored() -> R {
    let mut env = TestEnv::start().await?;
    env.spawn_persister()?;
    let mut conn = env.db()?;
    let ids: Vec<i64> = (1..=20).map(|i| crunch_store::hotels::upsert_hotel(&mut conn, &hotel(i, None))).collect::<Result<_, _>>()?;
    let select = |id: i64| env.http.post(env.url("/api/v1/selections")).bearer_auth(&env.key).json(&json!({"hotel_ids": [id]})).send();
    assert_eq!(select(ids[0]).await?.status(), 202);
    wait_total(&env, 1, Duration::from_secs(30)).await?;
    let health = &env.persister_health[0];
    env.wait_metric(health, "crunch_persister_consumer_lag", "", |v| v == 0.0, Duration::from_secs(10)).await?;

    let mut locker = env.db()?;
    diesel::sql_query("BEGIN").execute(&mut locker)?;
    diesel::sql_query("LOCK TABLE selections IN EXCLUSIVE MODE").execute(&mut locker)?;
    for &id in &ids[1..] {
        assert_eq!(select(id).await?.status(), 202);
    }
    let waiting = env.wait_metric(health, "crunch_persister_consumer_lag", "", |v| v >= 19.0, Duration::from_secs(15)).await?;
    assert_eq!(waiting, 19.0, "one lag per message not yet stored");
    diesel::sql_query("ROLLBACK").execute(&mut locker)?;
    wait_total(&env, 20, Duration::from_secs(30)).await?;
    env.wait_metric(health, "crunch_persister_consumer_lag", "", |v| v == 0.0, Duration::from_secs(15)).await?;
    // At least once each: a batch held by the lock past max.poll.interval.ms
    // may be replayed after a rebalance (harmless, and counted again).
    assert!(env.service_metric(health, "crunch_persister_messages_total", "outcome=\"stored\"").await? >= 20.0);
    Ok(())
}
