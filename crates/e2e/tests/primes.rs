//! `primes` jobs end to end: count and list, pages and streams, bad input,
//! sharding across two worker processes, cancelling a sharded job.

use std::time::Duration;

use crunch_compute::factor::small::is_prime_u64;
use crunch_e2e::{Options, TestEnv};
use diesel::sql_types::{BigInt, Text};
use diesel::RunQueryDsl;
use serde_json::{json, Value};

type R = anyhow::Result<()>;

async fn submit(env: &TestEnv, params: Value) -> anyhow::Result<String> {
    let r = env.submit(json!({"kind": "primes", "params": params})).await?;
    anyhow::ensure!(r.status() == 202, "submit: {}", r.status());
    let job: Value = r.json().await?;
    Ok(job["id"].as_str().unwrap_or_default().to_owned())
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_and_lists_primes_with_pages_and_streams() -> R {
    let env = TestEnv::start().await?;
    let count = submit(&env, json!({"from": 0, "to": "1000000", "mode": "count"})).await?;
    let list = submit(&env, json!({"from": "999000", "to": 1_200_000, "mode": "list"})).await?;
    let edge = submit(&env, json!({"from": "18446744073709551500", "to": "18446744073709551615", "mode": "list"})).await?;
    let tiny = submit(&env, json!({"from": 0, "to": 1, "mode": "list"})).await?;

    let c = env.wait_finished(&count).await?;
    assert_eq!(c["status"], "succeeded", "{c}");
    assert_eq!(c["result"]["count"], 78_498);

    let l = env.wait_finished(&list).await?;
    assert_eq!(l["status"], "succeeded", "{l}");
    let expected: Vec<u64> = (999_000..=1_200_000).filter(|&n| is_prime_u64(n)).collect();
    assert_eq!(l["result"]["count"].as_u64(), Some(expected.len() as u64));
    assert_eq!(l["result"]["first_primes"][0].as_u64(), Some(expected[0]));

    // Pages.
    let url = env.url(&format!("/api/v1/jobs/{list}/result"));
    let p1: Value = env.http.get(format!("{url}?limit=100")).bearer_auth(&env.key).send().await?.json().await?;
    assert_eq!(p1["total"].as_u64(), Some(expected.len() as u64));
    assert_eq!(p1["items"].as_array().map(|a| a.len()), Some(100));
    assert_eq!(p1["next"], 100);
    let mid: Value = env.http.get(format!("{url}?offset=10000&limit=5")).bearer_auth(&env.key).send().await?.json().await?;
    let want: Vec<u64> = expected[10_000..10_005].to_vec();
    assert_eq!(mid["items"], json!(want));
    let last: Value = env.http.get(format!("{url}?offset={}&limit=1000", expected.len() - 3)).bearer_auth(&env.key).send().await?.json().await?;
    assert_eq!(last["items"].as_array().map(|a| a.len()), Some(3));
    assert!(last["next"].is_null());
    // Offsets past the end, up to the largest, give an empty last page.
    for offset in [expected.len() as u64, u64::MAX - 5, u64::MAX] {
        for limit in [1, 100_000] {
            let r = env.http.get(format!("{url}?offset={offset}&limit={limit}")).bearer_auth(&env.key).send().await?;
            assert_eq!(r.status(), 200, "offset {offset}");
            let page: Value = r.json().await?;
            assert_eq!((page["items"].as_array().map(|a| a.len()), page["next"].is_null()), (Some(0), true), "offset {offset}: {page}");
        }
        let text = env.http.get(format!("{url}?offset={offset}&limit=7")).bearer_auth(&env.key).header("Accept", "text/plain").send().await?;
        assert_eq!((text.status().as_u16(), text.text().await?), (200, String::new()), "offset {offset}");
    }
    for bad in ["limit=0", "limit=100001", "offset=-1", "limit=x"] {
        let r = env.http.get(format!("{url}?{bad}")).bearer_auth(&env.key).send().await?;
        assert_eq!(r.status(), 400, "{bad}");
    }

    // Streams: text/plain and NDJSON, whole and from an offset.
    let text = env.http.get(&url).bearer_auth(&env.key).header("Accept", "text/plain").send().await?;
    assert!(text.headers()["content-type"].to_str()?.starts_with("text/plain"));
    let text = text.text().await?;
    let got: Vec<u64> = text.lines().map(|l| l.parse().expect("a number per line")).collect();
    assert_eq!(got, expected);
    let nd = env.http.get(format!("{url}?offset=5&limit=3")).bearer_auth(&env.key).header("Accept", "application/x-ndjson").send().await?;
    let nd: Vec<Value> = nd.text().await?.lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    assert_eq!(nd, expected[5..8].iter().map(|&p| json!(p)).collect::<Vec<_>>());

    // The top of the 64-bit range; 0 and 1 are not prime.
    let e = env.wait_finished(&edge).await?;
    let top: Vec<u64> = (18_446_744_073_709_551_500u64..=u64::MAX).filter(|&n| is_prime_u64(n)).collect();
    assert_eq!(e["result"]["first_primes"], json!(top));
    let t = env.wait_finished(&tiny).await?;
    assert_eq!(t["result"]["count"], 0);

    // A count job has its result object; an unfinished job has none (409).
    let r: Value = env.http.get(env.url(&format!("/api/v1/jobs/{count}/result"))).bearer_auth(&env.key).send().await?.json().await?;
    assert_eq!(r["count"], 78_498);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_ranges_get_400_naming_the_rule_and_the_limit() -> R {
    let env = TestEnv::start_with(Options { workers: 0, ..Default::default() }).await?;
    let cases = [
        (json!({"from": 5, "to": 4, "mode": "count"}), "must not exceed"),
        (json!({"from": -1, "to": 4, "mode": "count"}), "negative"),
        (json!({"from": 1.5, "to": 4, "mode": "count"}), "not an integer"),
        (json!({"from": "0", "to": "18446744073709551616", "mode": "count"}), "above 2^64 - 1"),
        (json!({"from": 0, "to": 2_000_000_000u64, "mode": "list"}), "limit of 1000000000"),
        (json!({"from": 0, "to": 10, "mode": "sum"}), "\"list\" or \"count\""),
    ];
    for (params, needle) in cases {
        let r = env.submit(json!({"kind": "primes", "params": params})).await?;
        assert_eq!(r.status(), 400, "{params}");
        let err: Value = r.json().await?;
        assert_eq!(err["error"]["code"], "invalid_params");
        assert!(err["error"]["message"].as_str().unwrap_or("").contains(needle), "{params}: {err}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wide_ranges_are_sharded_across_two_workers_and_aggregated_in_order() -> R {
    let env = TestEnv::start_with(Options {
        workers: 2,
        worker_env: vec![
            ("CRUNCH_PRIMES_SHARD_WIDTH_COUNT".into(), "10000000".into()),
            ("CRUNCH_PRIMES_SHARD_WIDTH_LIST".into(), "1000000".into()),
            ("CRUNCH_WORKER_PREFETCH".into(), "2".into()),
        ],
        ..Default::default()
    })
    .await?;
    // Narrow enough (10^8 numbers at 10^14) that sieving beats pi(x).
    let count = submit(&env, json!({"from": "100000000000000", "to": "100000099999999", "mode": "count"})).await?;
    let list = submit(&env, json!({"from": 0, "to": 4_999_999, "mode": "list"})).await?;
    let c = env.wait_finished(&count).await?;
    assert_eq!(c["status"], "succeeded", "{c}");
    assert_eq!(c["result"]["count"], 3_102_679);
    assert_eq!(c["result"]["shards"], 10);
    let l = env.wait_finished(&list).await?;
    assert_eq!(l["status"], "succeeded", "{l}");
    assert_eq!(l["result"]["count"], 348_513);
    assert_eq!(l["result"]["shards"], 5);
    assert_eq!(l["result"]["first_primes"], json!([2, 3, 5, 7, 11, 13, 17, 19, 23, 29]));

    // Shards are jobs of their own, all succeeded, hidden from the listing.
    let mut conn = env.db()?;
    let shards: Count = diesel::sql_query("SELECT count(*) AS n FROM jobs WHERE parent_id = $1::uuid AND status = 'succeeded'")
        .bind::<Text, _>(&count)
        .get_result(&mut conn)?;
    assert_eq!(shards.n, 10);
    let listed: Value = env.http.get(env.url("/api/v1/jobs?limit=100")).bearer_auth(&env.key).send().await?.json().await?;
    assert_eq!(listed["items"].as_array().map(|a| a.len()), Some(2));

    // The list streams in order across shards, and pages cross shard borders.
    let url = env.url(&format!("/api/v1/jobs/{list}/result"));
    let text = env.http.get(&url).bearer_auth(&env.key).header("Accept", "text/plain").send().await?.text().await?;
    let got: Vec<u64> = text.lines().map(|l| l.parse().expect("number")).collect();
    assert_eq!(got.len(), 348_513);
    assert!(got.windows(2).all(|w| w[0] < w[1]), "ascending across shards");
    assert_eq!(got.last(), Some(&4_999_999));
    let b = l["result"]["shard_counts"][0].as_u64().expect("shard counts") as usize;
    let page: Value = env.http.get(format!("{url}?offset={}&limit=4", b - 2)).bearer_auth(&env.key).send().await?.json().await?;
    assert_eq!(page["items"], json!(got[b - 2..b + 2].to_vec()));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_sharded_job_cancels_its_shards() -> R {
    let env = TestEnv::start_with(Options {
        worker_env: vec![("CRUNCH_PRIMES_SHARD_WIDTH_COUNT".into(), "20000000000".into()), ("CRUNCH_WORKER_PREFETCH".into(), "1".into())],
        ..Default::default()
    })
    .await?;
    // 1.2 * 10^12 numbers at 1.8 * 10^19: sieved in shards (pi there twice would take longer).
    let id = submit(&env, json!({"from": "18000000000000000000", "to": "18000001199999999999", "mode": "count"})).await?;
    env.wait_for(&id, Duration::from_secs(20), |s| s == "running").await?;
    // wait until the shards exist
    let mut conn = env.db()?;
    for _ in 0..100 {
        let n: Count = diesel::sql_query("SELECT count(*) AS n FROM jobs WHERE parent_id = $1::uuid").bind::<Text, _>(&id).get_result(&mut conn)?;
        if n.n > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = env.http.delete(env.url(&format!("/api/v1/jobs/{id}"))).bearer_auth(&env.key).send().await?;
    assert_eq!(r.status(), 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let live: Count = diesel::sql_query("SELECT count(*) AS n FROM jobs WHERE parent_id = $1::uuid AND status IN ('queued', 'running')")
        .bind::<Text, _>(&id)
        .get_result(&mut conn)?;
    assert_eq!(live.n, 0);
    let total: Count = diesel::sql_query("SELECT count(*) AS n FROM jobs WHERE parent_id = $1::uuid").bind::<Text, _>(&id).get_result(&mut conn)?;
    assert_eq!(total.n, 60);
    // The worker is free again: a small job completes promptly.
    let small = submit(&env, json!({"from": 0, "to": 100, "mode": "count"})).await?;
    assert_eq!(env.wait_for(&small, Duration::from_secs(10), |s| s == "succeeded").await?["result"]["count"], 25);
    assert_eq!(env.get_job(&id).await?["status"], "cancelled");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sharded_job_reports_progress_live_as_shards_finish() -> R {
    use futures::StreamExt;
    let env = TestEnv::start_with(Options {
        worker_env: vec![("CRUNCH_PRIMES_SHARD_WIDTH_COUNT".into(), "20000000".into()), ("CRUNCH_WORKER_PREFETCH".into(), "1".into())],
        ..Default::default()
    })
    .await?;
    let url = env.url("/api/v1/events").replace("http://", "ws://");
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{url}?access_token={}", env.key)).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let id = submit(&env, json!({"from": "100000000000000", "to": "100000199999999", "mode": "count"})).await?;
    let mut progress = Vec::new();
    let mut done = None;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while done.is_none() && std::time::Instant::now() < deadline {
        if let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            if let Ok(text) = msg.into_text() {
                let ev: Value = serde_json::from_str(&text)?;
                assert_eq!(ev["job_id"], id.as_str(), "only the parent's events reach the client: {ev}");
                match ev["type"].as_str() {
                    Some("progress") => progress.push(ev["progress"].as_f64().unwrap_or(-1.0)),
                    Some("succeeded") => done = Some(ev),
                    _ => {}
                }
            }
        }
    }
    let done = done.expect("a succeeded event");
    assert_eq!(done["data"]["count"], 6_202_561);
    assert!(progress.len() >= 5, "progress events: {progress:?}");
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "progress never goes back: {progress:?}");
    assert!(progress.iter().all(|p| (0.0..1.0).contains(p)));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wide_counts_go_through_pi_with_live_progress_and_cancel() -> R {
    let env = TestEnv::start().await?;
    // pi(10^13) - pi(10^6 - 1): a sieve of 10^13 numbers would need most of
    // an hour on two cores; pi(x) takes a fraction of a second.
    let id = submit(&env, json!({"from": "1000000", "to": "10000000000000", "mode": "count"})).await?;
    let c = env.wait_finished(&id).await?;
    assert_eq!(c["status"], "succeeded", "{c}");
    assert_eq!(c["result"]["count"], 346_065_536_839u64 - 78_498);
    assert!(c["result"].get("shards").is_none(), "one job, not shards: {c}");

    // The whole 64-bit space is accepted; progress moves; cancel stops it.
    let all = submit(&env, json!({"from": 0, "to": "18446744073709551615", "mode": "count"})).await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let job = env.get_job(&all).await?;
        let p = job["progress"].as_f64().unwrap_or(0.0);
        if p > 0.0 {
            assert!(p < 1.0, "{job}");
            break;
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "no progress on pi(2^64 - 1): {job}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let r = env.http.delete(env.url(&format!("/api/v1/jobs/{all}"))).bearer_auth(&env.key).send().await?;
    assert_eq!(r.status(), 200);
    let done = env.wait_for(&all, Duration::from_secs(15), |s| s == "cancelled").await?;
    assert_eq!(done["status"], "cancelled");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nth_prime_small_and_large_and_bad_n_refused() -> R {
    let env = TestEnv::start().await?;
    let mut jobs = Vec::new();
    // 1: the quick queue; 10^6: one sieve; 10^10: pi(x) and the last gap.
    for (n, p) in [(json!(1), "2"), (json!(1_000_000), "15485863"), (json!("10000000000"), "252097800623")] {
        let r = env.submit(json!({"kind": "nth_prime", "params": {"n": n}})).await?;
        assert_eq!(r.status(), 202);
        jobs.push((r.json::<Value>().await?["id"].as_str().unwrap_or_default().to_owned(), p));
    }
    for (id, p) in jobs {
        let job = env.wait_finished(&id).await?;
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(job["result"]["prime"], p, "{job}");
    }
    for (n, needle) in [(json!(0), "at least 1"), (json!("425656284035217744"), "pi(2^64 - 1)"), (json!(-1), "negative")] {
        let r = env.submit(json!({"kind": "nth_prime", "params": {"n": n}})).await?;
        assert_eq!(r.status(), 400);
        let body: Value = r.json().await?;
        assert_eq!(body["error"]["code"], "invalid_params");
        assert!(body["error"]["message"].as_str().unwrap_or("").contains(needle), "{body}");
    }
    Ok(())
}
