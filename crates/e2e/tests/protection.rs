//! Protection: per-key rate limits, slow clients (headers, stalled and slow
//! bodies, stalled uploads) and graceful worker shutdown on SIGTERM.

use std::time::{Duration, Instant};

use crunch_e2e::{Options, TestEnv};
use crunch_gateway::protect::ProtectArgs;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

type R = anyhow::Result<()>;

fn strict() -> Options {
    Options {
        protect: ProtectArgs { rate_limit_per_sec: 5, rate_limit_burst: 5, header_timeout_ms: 500, body_idle_timeout_secs: 1, body_timeout_secs: 2, ..Default::default() },
        ..Default::default()
    }
}

/// Sends `head`, then each of `pieces` after `gap`, and reads the answer (or
/// the connection's end) with a time limit; returns it and the time it took
/// from the last piece sent.
async fn raw(env: &TestEnv, head: &str, pieces: &[&[u8]], gap: Duration) -> anyhow::Result<(String, Duration)> {
    let addr = env.base.trim_start_matches("http://").to_owned();
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(head.as_bytes()).await?;
    for p in pieces {
        tokio::time::sleep(gap).await;
        // The server may have given up already: a refused write is an answer too.
        if s.write_all(p).await.is_err() {
            break;
        }
    }
    let t = Instant::now();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    Ok((String::from_utf8_lossy(&buf).into_owned(), t.elapsed()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_key_has_its_own_request_allowance() -> R {
    let env = TestEnv::start_with(strict()).await?;
    let other = crunch_e2e::create_key(&env.database_url, "other")?;
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..12 {
        let r = env.http.get(env.url("/api/v1/jobs")).bearer_auth(&env.key).send().await?;
        statuses.push(r.status().as_u16());
        if r.status() == 429 && limited.is_none() {
            let retry: u64 = r.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0);
            limited = Some((retry, r.json::<Value>().await?));
        }
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 5, "the burst of 5 passes, the rest is refused: {statuses:?}");
    let (retry, body) = limited.expect("some requests were limited");
    assert_eq!(body["error"]["code"], "rate_limited");
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    // Another key is not affected; the first is served again a moment later.
    let r = env.http.get(env.url("/api/v1/jobs")).bearer_auth(&other).send().await?;
    assert_eq!(r.status(), 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = env.http.get(env.url("/api/v1/jobs")).bearer_auth(&env.key).send().await?;
    assert_eq!(r.status(), 200);
    // Unauthenticated routes are not counted against anybody.
    for _ in 0..10 {
        assert_eq!(env.http.get(env.url("/healthz")).send().await?.status(), 200);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_and_slow_or_stalled_bodies_get_408() -> R {
    let env = TestEnv::start_with(strict()).await?;
    let body = br#"{"kind": "factorize", "params": {"n": "12"}}"#;
    let head = |len: usize| {
        format!("POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n", env.key)
    };

    // Headers that never finish: the connection is closed within the 500 ms.
    let (answer, took) = raw(&env, "POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\n", &[], Duration::ZERO).await?;
    assert!(took < Duration::from_secs(3), "slow headers held the connection {took:?}");
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");

    // A body that stops half-way: 408 after the 1 s pause rule.
    let (answer, took) = raw(&env, &head(body.len()), &[&body[..10]], Duration::ZERO).await?;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""code":"request_timeout""#), "{answer}");
    assert!(took < Duration::from_secs(4), "{took:?}");

    // A body that trickles (a byte every 400 ms, never pausing 1 s) but would
    // take 18 s: 408 at the 2 s whole-body limit.
    let pieces: Vec<&[u8]> = body.chunks(1).collect();
    let t = Instant::now();
    let (answer, _) = raw(&env, &head(body.len()), &pieces, Duration::from_millis(400)).await?;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());

    // Nothing of the above was stored; a normal request still works.
    let list: Value = env.http.get(env.url("/api/v1/jobs")).bearer_auth(&env.key).send().await?.json().await?;
    assert_eq!(list["items"].as_array().map(|a| a.len()), Some(0), "{list}");
    let r = env.submit(json!({"kind": "factorize", "params": {"n": "12"}})).await?;
    assert_eq!(r.status(), 202);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_upload_gets_408_and_nothing_is_kept() -> R {
    let env = TestEnv::start_with(strict()).await?;
    let r = env.http.post(env.url("/api/v1/gene-files")).bearer_auth(&env.key).json(&json!({"file_name": "a.fasta"})).send().await?;
    assert_eq!(r.status(), 201, "{}", r.text().await?);
    let file: Value = r.json().await?;
    let id = file["id"].as_str().unwrap_or_default().to_owned();
    let head = format!(
        "PUT /api/v1/gene-files/{id}/content HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: 1000000\r\n\r\n",
        env.key
    );
    let (answer, _) = raw(&env, &head, &[b">r1\nACGT\n"], Duration::ZERO).await?;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let file: Value = env.http.get(env.url(&format!("/api/v1/gene-files/{id}"))).bearer_auth(&env.key).send().await?.json().await?;
    assert!(file["job"].is_null(), "no job for a stalled upload: {file}");
    let dir = crunch_e2e::blob_dir(&env.namespace);
    let kept = walk(&dir);
    assert!(kept.is_empty(), "upload parts left behind: {kept:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_upload_gets_408_once_it_falls_below_the_minimum_rate() -> R {
    let env = TestEnv::start_with(strict()).await?;
    let file: Value = env.http.post(env.url("/api/v1/gene-files")).bearer_auth(&env.key).json(&json!({"file_name": "t.fasta"})).send().await?.json().await?;
    let id = file["id"].as_str().unwrap_or_default().to_owned();
    let head = format!(
        "PUT /api/v1/gene-files/{id}/content HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: 1000000\r\n\r\n",
        env.key
    );
    // A byte every 0.4 s never stalls (idle rule: 1 s) but stays far below
    // 8 KiB a second: refused once it has run for the 2 s body time.
    let pieces = vec![&b"A"[..]; 12];
    let started = Instant::now();
    let (answer, _) = raw(&env, &head, &pieces, Duration::from_millis(400)).await?;
    assert!(answer.starts_with("HTTP/1.1 408") && answer.contains("slower than 8192 bytes a second"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    let file: Value = env.http.get(env.url(&format!("/api/v1/gene-files/{id}"))).bearer_auth(&env.key).send().await?.json().await?;
    assert!(file["job"].is_null(), "no job for a trickling upload: {file}");
    assert!(walk(&crunch_e2e::blob_dir(&env.namespace)).is_empty(), "nothing is kept");
    Ok(())
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn sigterm(env: &TestEnv, i: usize) {
    let pid = env.workers[i].id();
    let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_short_jobs_returns_long_ones_and_exits_promptly() -> R {
    let mut env = TestEnv::start_with(Options {
        worker_env: vec![("CRUNCH_SHUTDOWN_GRACE_SECS".into(), "8".into()), ("CRUNCH_WORKER_PREFETCH".into(), "2".into())],
        ..Default::default()
    })
    .await?;
    let short = env.submit_n(&crunch_e2e::mersenne_semiprime(89, 107)).await?;
    let long = env.submit_n(&crunch_e2e::mersenne_semiprime(107, 127)).await?;
    env.wait_for(&short, Duration::from_secs(30), |s| s == "running").await?;
    env.wait_for(&long, Duration::from_secs(30), |s| s == "running").await?;
    let t = Instant::now();
    sigterm(&env, 0);
    // New work is not taken once the signal arrived (given time to arrive: a
    // quick job submitted at once could be taken before the handler runs).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let late = env.submit_n("1001").await?;
    let status = loop {
        if let Some(s) = env.workers[0].try_wait()? {
            break s;
        }
        anyhow::ensure!(t.elapsed() < Duration::from_secs(30), "the worker did not exit within 30 s of SIGTERM");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let took = t.elapsed();
    eprintln!("worker exited {took:?} after SIGTERM ({status})");
    assert!(status.success(), "{status}");
    assert!(took < Duration::from_secs(12), "grace 8 s, exited after {took:?}");
    // The short job finished inside the grace period; the others wait, unlost.
    assert_eq!(env.get_job(&short).await?["status"], "succeeded");
    assert_ne!(env.get_job(&long).await?["status"], "succeeded");
    assert_eq!(env.get_job(&late).await?["status"], "queued");
    // A new worker takes both over: the long job runs again, the late one completes.
    env.spawn_worker()?;
    assert_eq!(env.wait_finished(&late).await?["status"], "succeeded");
    let job = env.wait_for(&long, Duration::from_secs(30), |s| s == "running").await?;
    assert!(job["attempts"].as_i64().unwrap_or(0) >= 2, "{job}");
    let r = env.http.delete(env.url(&format!("/api/v1/jobs/{long}"))).bearer_auth(&env.key).send().await?;
    assert_eq!(r.status(), 200);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_keys_cost_their_address_and_cannot_drain_the_pool() -> R {
    let env = TestEnv::start_with(Options {
        protect: ProtectArgs { rate_limit_per_sec: 0, key_lookups_per_sec: 2, key_lookups_burst: 5, ..Default::default() },
        ..Default::default()
    })
    .await?;
    // A client whose key works.
    assert_eq!(env.http.get(env.url("/api/v1/jobs")).bearer_auth(&env.key).send().await?.status(), 200);
    // Malformed keys are refused without a lookup, however many.
    for i in 0..50 {
        let r = env.http.get(env.url("/api/v1/jobs")).bearer_auth(format!("crk_{i}")).send().await?;
        assert_eq!(r.status(), 401);
    }
    // Well-formed made-up keys: the rest of the burst of 5 lookups (the
    // working key's first lookup took one), then 429 for the address.
    let mut statuses = Vec::new();
    for _ in 0..20 {
        let made_up = crunch_gateway::auth::generate_key();
        statuses.push(env.http.get(env.url("/api/v1/jobs")).bearer_auth(made_up).send().await?.status().as_u16());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 4, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 16, "{statuses:?}");
    // A made-up key sent again is answered from the cache: 401, not 429.
    let made_up = crunch_gateway::auth::generate_key();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(env.http.get(env.url("/api/v1/jobs")).bearer_auth(&made_up).send().await?.status(), 401);
    for _ in 0..5 {
        assert_eq!(env.http.get(env.url("/api/v1/jobs")).bearer_auth(&made_up).send().await?.status(), 401);
    }
    // The working key is served throughout, also once its cache time (5 s)
    // is over while the address has no lookups left: it was seen active.
    assert_eq!(env.http.get(env.url("/api/v1/jobs")).bearer_auth(&env.key).send().await?.status(), 200);
    for _ in 0..20 {
        env.http.get(env.url("/api/v1/jobs")).bearer_auth(crunch_gateway::auth::generate_key()).send().await?;
    }
    tokio::time::sleep(Duration::from_millis(5200)).await;
    for _ in 0..20 {
        env.http.get(env.url("/api/v1/jobs")).bearer_auth(crunch_gateway::auth::generate_key()).send().await?;
    }
    assert_eq!(env.http.get(env.url("/api/v1/jobs")).bearer_auth(&env.key).send().await?.status(), 200);

    // Many made-up keys at once from many tasks: known keys keep working.
    let flood: Vec<_> = (0..200)
        .map(|_| {
            let http = env.http.clone();
            let url = env.url("/api/v1/jobs");
            tokio::spawn(async move { http.get(url).bearer_auth(crunch_gateway::auth::generate_key()).send().await.map(|r| r.status().as_u16()) })
        })
        .collect();
    for _ in 0..10 {
        assert_eq!(env.http.get(env.url("/api/v1/jobs")).bearer_auth(&env.key).send().await?.status(), 200);
    }
    for f in flood {
        let status = f.await??;
        assert!(status == 401 || status == 429, "{status}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_sockets_are_limited_per_key_and_close_when_the_key_is_revoked() -> R {
    let env = TestEnv::start().await?;
    let key = crunch_e2e::create_key(&env.database_url, "sockets")?;
    let url = env.url("/api/v1/events").replace("http://", "ws://");
    let mut open = Vec::new();
    for _ in 0..8 {
        let (ws, _) = tokio_tungstenite::connect_async(format!("{url}?access_token={key}")).await?;
        open.push(ws);
    }
    match tokio_tungstenite::connect_async(format!("{url}?access_token={key}")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 429),
        other => anyhow::bail!("a ninth socket: {:?}", other.map(|_| ())),
    }
    // Another key is not affected; closing one frees its place.
    let (_other, _) = tokio_tungstenite::connect_async(format!("{url}?access_token={}", env.key)).await?;
    drop(open.pop());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (ws, _) = tokio_tungstenite::connect_async(format!("{url}?access_token={key}")).await?;
    open.push(ws);

    // Revoked: every open socket of the key is closed within the cache time (5 s).
    let mut conn = env.db()?;
    let id = crunch_store::keys::list_keys(&mut conn)?.into_iter().find(|k| k.name == "sockets").map(|k| k.id).expect("the key");
    assert!(crunch_store::keys::revoke_key(&mut conn, id)?);
    let t = Instant::now();
    for mut ws in open {
        use futures::StreamExt;
        loop {
            match tokio::time::timeout(Duration::from_secs(8), ws.next()).await {
                Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => break,
                Ok(Some(Ok(_))) => continue,
                Err(_) => anyhow::bail!("a revoked key's socket stayed open for 8 s"),
            }
        }
    }
    assert!(t.elapsed() < Duration::from_secs(7), "{:?}", t.elapsed());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_key_cannot_queue_more_than_its_share() -> R {
    let env = TestEnv::start_with(Options {
        workers: 0,
        protect: ProtectArgs { max_queued_jobs_per_key: 5, ..Default::default() },
        ..Default::default()
    })
    .await?;
    for i in 0..5 {
        let r = env.submit(json!({"kind": "factorize", "params": {"n": format!("{}", 1000 + i)}})).await?;
        assert_eq!(r.status(), 202);
    }
    let r = env.submit(json!({"kind": "factorize", "params": {"n": "2000"}})).await?;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await?;
    assert_eq!(body["error"]["code"], "too_many_queued_jobs", "{body}");
    // Another key still gets its share; once the jobs run, the first key is admitted again.
    let other = crunch_e2e::create_key(&env.database_url, "other")?;
    let r = env.http.post(env.url("/api/v1/jobs")).bearer_auth(&other).json(&json!({"kind": "factorize", "params": {"n": "77"}})).send().await?;
    assert_eq!(r.status(), 202);
    let mut env = env;
    env.spawn_worker()?;
    let t = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let r = env.submit(json!({"kind": "factorize", "params": {"n": "2001"}})).await?;
        if r.status() == 202 {
            break;
        }
        anyhow::ensure!(t.elapsed() < Duration::from_secs(30), "still {} after the jobs ran", r.status());
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_key_has_a_limited_number_of_uploads_in_progress() -> R {
    use futures::StreamExt;
    let env = TestEnv::start_with(Options { protect: ProtectArgs { max_uploads_per_key: 2, ..Default::default() }, ..Default::default() }).await?;
    let mut ids = Vec::new();
    for i in 0..4 {
        let file: Value = env.http.post(env.url("/api/v1/gene-files")).bearer_auth(&env.key).json(&json!({"file_name": format!("u{i}.fasta")})).send().await?.json().await?;
        ids.push(file["id"].as_str().unwrap_or_default().to_owned());
    }
    // Three slow uploads at once (a record every 300 ms for about 2 s).
    let slow = |id: String| {
        let (http, url, key) = (env.http.clone(), env.url(&format!("/api/v1/gene-files/{id}/content")), env.key.clone());
        tokio::spawn(async move {
            let records = futures::stream::iter(0..7).then(|i| async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                Ok::<_, std::io::Error>(format!(">r{i}\nACGT\n").into_bytes())
            });
            let r = http.put(url).bearer_auth(key).body(reqwest::Body::wrap_stream(records)).send().await?;
            anyhow::Ok(r.status().as_u16())
        })
    };
    let uploads: Vec<_> = ids[..3].iter().cloned().map(slow).collect();
    let mut statuses = Vec::new();
    for u in uploads {
        statuses.push(u.await??);
    }
    statuses.sort();
    assert_eq!(statuses, vec![202, 202, 429], "{statuses:?}");
    // Once they are done, the key may upload again.
    let r = env.http.put(env.url(&format!("/api/v1/gene-files/{}/content", ids[3]))).bearer_auth(&env.key).body(">a\nACGT\n").send().await?;
    assert_eq!(r.status(), 202);
    Ok(())
}
