//! Gene files end to end: create, upload (streamed PUT or presigned URL),
//! parse on the worker, sequences in PostgreSQL, result download, bad input,
//! a worker killed mid-file, and the S3 backend.

use std::io::Write;

use anyhow::Context;
use std::time::{Duration, Instant};

use crunch_e2e::{Options, TestEnv};
use diesel::RunQueryDsl;
use futures::StreamExt;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

type R = anyhow::Result<()>;

/// A demo_file.fasta in the shape users upload: 13 records, lowercase
/// 60-column lines, long descriptive headers.
fn demo_fasta() -> (Vec<u8>, Vec<(String, String)>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    let mut out = Vec::new();
    let mut records = Vec::new();
    for i in 0..13 {
        let name = format!("NM_{:06}.{} Homo sapiens synthetic gene {i} (SYN{i}), transcript variant {}, mRNA", 1000 + i * 7, i % 3 + 1, i % 4 + 1);
        let len = rng.gen_range(70..400);
        let seq: String = (0..len).map(|_| b"acgt"[rng.gen_range(0..4)] as char).collect();
        out.extend_from_slice(format!(">{name}\n").as_bytes());
        for line in seq.as_bytes().chunks(60) {
            out.extend_from_slice(line);
            out.push(b'\n');
        }
        records.push((name, seq));
    }
    (out, records)
}

/// A demo_file.csv: CRLF, a header and 10 rows; row 3's sequence has
/// spaces, row 6's is lowercase.
fn demo_csv() -> Vec<u8> {
    let mut s = String::from("gene name,sequence\r\n");
    for i in 0..10 {
        let seq = match i {
            3 => "ACGT ACGT  GGCC".to_owned(),
            6 => "acgtacgtttaa".to_owned(),
            _ => "ACGTGGCCAATT".repeat(i + 1),
        };
        s.push_str(&format!("gene_{i},{seq}\r\n"));
    }
    s.into_bytes()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

async fn create(env: &TestEnv, body: Value) -> anyhow::Result<(u16, Value)> {
    let r = env.http.post(env.url("/api/v1/gene-files")).bearer_auth(&env.key).json(&body).send().await?;
    Ok((r.status().as_u16(), r.json().await?))
}

async fn put(env: &TestEnv, id: &str, bytes: Vec<u8>) -> anyhow::Result<(u16, Value)> {
    let r = env.http.put(env.url(&format!("/api/v1/gene-files/{id}/content"))).bearer_auth(&env.key).body(bytes).send().await?;
    Ok((r.status().as_u16(), r.json().await?))
}

/// Creates, uploads and waits for the job; returns the finished job.
async fn parse_file(env: &TestEnv, create_body: Value, bytes: Vec<u8>) -> anyhow::Result<(String, Value)> {
    let (status, file) = create(env, create_body).await?;
    anyhow::ensure!(status == 201, "create: {status} {file}");
    let id = file["id"].as_str().unwrap_or_default().to_owned();
    let (status, file) = put(env, &id, bytes).await?;
    anyhow::ensure!(status == 202 && file["job"]["id"].is_string(), "upload: {status} {file}");
    let job_id = file["job"]["id"].as_str().unwrap_or_default().to_owned();
    let job = env.wait_for(&job_id, Duration::from_secs(120), |s| matches!(s, "succeeded" | "failed" | "cancelled")).await?;
    Ok((id, job))
}

async fn get_json(env: &TestEnv, path: &str) -> anyhow::Result<(u16, Value)> {
    let r = env.http.get(env.url(path)).bearer_auth(&env.key).send().await?;
    Ok((r.status().as_u16(), r.json().await?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fasta_and_csv_are_parsed_stored_and_served() -> R {
    let env = TestEnv::start().await?;
    let (fasta, records) = demo_fasta();
    let (id, job) = parse_file(&env, json!({"file_name": "demo_file.fasta"}), fasta.clone()).await?;
    assert_eq!(job["status"], "succeeded", "{job}");
    let r = &job["result"];
    assert_eq!((r["records"].as_u64(), r["stored"].as_u64(), r["invalid"].as_u64(), r["duplicates"].as_u64()), (Some(13), Some(13), Some(0), Some(0)), "{r}");
    assert_eq!(r["bytes"].as_u64(), Some(fasta.len() as u64));

    // The result document: one object per sequence with its length and GC, in file order.
    let (status, doc) = get_json(&env, &format!("/api/v1/gene-files/{id}/result")).await?;
    assert_eq!(status, 200);
    let items = doc.as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 13);
    let mut line = 1;
    for (item, (name, seq)) in items.iter().zip(&records) {
        assert_eq!(item["gene_name"], name.as_str());
        assert_eq!(item["sequence"], seq.as_str(), "lines joined, case kept");
        assert_eq!(item["line_number"], line);
        assert_eq!(item["length"], seq.len());
        let gc = seq.bytes().filter(|b| matches!(b, b'g' | b'c')).count() as f64 / seq.len() as f64;
        assert!((item["gc"].as_f64().unwrap_or(-1.0) - gc).abs() < 1e-6);
        line += 1 + seq.len().div_ceil(60);
    }
    // Pages and a name filter.
    let (_, page) = get_json(&env, &format!("/api/v1/gene-files/{id}/sequences?offset=10&limit=5")).await?;
    assert_eq!((page["total"].as_i64(), page["items"].as_array().map(Vec::len)), (Some(13), Some(3)));
    let (_, found) = get_json(&env, &format!("/api/v1/gene-files/{id}/sequences?name=gene%2012%20")).await?;
    assert_eq!(found["total"], 1, "{found}");
    assert_eq!(found["items"][0]["gene_name"], records[12].0.as_str());
    let (_, file) = get_json(&env, &format!("/api/v1/gene-files/{id}")).await?;
    assert_eq!((file["status"].as_str(), file["size_bytes"].as_u64(), file["result_url"].is_null()), (Some("succeeded"), Some(fasta.len() as u64), true));

    // CSV: CRLF, header, spaces stripped and counted, lowercase kept; gzip-compressed.
    let (id, job) = parse_file(&env, json!({"file_name": "demo_file.csv.gz"}), gzip(&demo_csv())).await?;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!((job["result"]["stored"].as_u64(), job["result"]["whitespace_stripped"].as_u64()), (Some(10), Some(3)), "{job}");
    let (_, doc) = get_json(&env, &format!("/api/v1/gene-files/{id}/result")).await?;
    assert_eq!(doc[3]["sequence"], "ACGTACGTGGCC");
    assert_eq!(doc[6]["sequence"], "acgtacgtttaa");
    assert_eq!(doc[0]["line_number"], 2, "the header is line 1");

    // FASTQ with a duplicate name, a bad base and a short quality line.
    let fastq = b"@r1\nACGT\n+\nIIII\n@r2\nGGCC\n+\nIIII\n@r1\nTTTT\n+\nIIII\n@r3\nACXT\n+\nIIII\n@r4\nAC\n+\nI\n".to_vec();
    let (id, job) = parse_file(&env, json!({"file_name": "reads.fq"}), fastq).await?;
    let r = &job["result"];
    assert_eq!((r["records"].as_u64(), r["stored"].as_u64(), r["duplicates"].as_u64(), r["invalid"].as_u64()), (Some(5), Some(2), Some(1), Some(2)), "{r}");
    assert_eq!(r["problems"][0]["line"], 14, "{r}");
    assert_eq!(r["problems"][0]["column"], 3, "{r}");
    let (_, doc) = get_json(&env, &format!("/api/v1/gene-files/{id}/result")).await?;
    assert_eq!(doc[0]["sequence"], "ACGT", "the first r1 is kept");

    // Another key sees none of it.
    let other = crunch_e2e::create_key(&env.database_url, "other")?;
    let r = env.http.get(env.url(&format!("/api/v1/gene-files/{id}"))).bearer_auth(&other).send().await?;
    assert_eq!(r.status(), 404);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_gene_files_fail_clearly_and_nothing_else_is_affected() -> R {
    let env = TestEnv::start_with(Options {
        worker_env: vec![("CRUNCH_GENES_MAX_DECOMPRESSED_BYTES".into(), (4 << 20).to_string())],
        genes_max_upload_bytes: 8 << 20,
        ..Default::default()
    })
    .await?;
    // Create-time rules.
    for (body, field) in [
        (json!({"file_name": "x.txt"}), "format"),
        (json!({"file_name": "x.fasta", "format": "genbank"}), "format"),
        (json!({"file_name": "x.fasta", "compression": "zstd"}), "compression"),
        (json!({"file_name": "x.fasta", "on_invalid": "ignore"}), "on_invalid"),
        (json!({"file_name": ""}), "file_name"),
    ] {
        let (status, err) = create(&env, body.clone()).await?;
        assert_eq!(status, 400, "{body}");
        assert_eq!(err["error"]["field"], field, "{err}");
    }
    let r = env.submit(json!({"kind": "genes", "params": {"file_id": uuid::Uuid::new_v4()}})).await?;
    assert_eq!(r.status(), 400, "genes jobs only through the gene-files API");

    // Empty upload, too large upload, start before upload.
    let (_, file) = create(&env, json!({"file_name": "e.fasta"})).await?;
    let id = file["id"].as_str().unwrap_or_default().to_owned();
    let (status, _) = put(&env, &id, Vec::new()).await?;
    assert_eq!(status, 400);
    let r = env.http.post(env.url(&format!("/api/v1/gene-files/{id}/uploaded"))).bearer_auth(&env.key).send().await?;
    assert_eq!(r.status(), 409, "nothing uploaded");
    let (status, err) = put(&env, &id, vec![b'A'; 9 << 20]).await?;
    assert_eq!(status, 413, "{err}");

    let failing = |name: &str, bytes: Vec<u8>, code: &'static str, needle: &'static str| {
        let name = name.to_owned();
        let env = &env;
        async move {
            let (_, job) = parse_file(env, json!({"file_name": name}), bytes).await?;
            assert_eq!(job["status"], "failed", "{name}: {job}");
            assert_eq!(job["error"]["code"], code, "{name}: {job}");
            let msg = job["error"]["message"].as_str().unwrap_or_default();
            assert!(msg.contains(needle), "{name}: {msg}");
            anyhow::Ok(())
        }
    };
    // Truncated gzip, a gzip bomb, binary data, a header without a sequence only, whitespace only.
    let gz = gzip(&demo_fasta().0);
    failing("t.fasta.gz", gz[..gz.len() / 2].to_vec(), "invalid_file", "truncated").await?;
    failing("bomb.fasta.gz", gzip(&vec![b'A'; 40 << 20]), "too_large", "gzip bomb").await?;
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend((0..5000u32).map(|i| (i * 7919 % 251) as u8));
    failing("img.fasta", png, "invalid_file", "no valid").await?;
    failing("h.fasta", b">only a header\n".to_vec(), "invalid_file", "header without a sequence").await?;
    failing("ws.fasta", b"\n\n  \n".to_vec(), "invalid_file", "").await?;
    failing("bad.csv", b"name;seq\nx;ACGT\n".to_vec(), "invalid_file", "gene name,sequence").await?;
    // Non-ASCII bytes in a record are reported with record, line and column; the rest is stored.
    let (_, job) = parse_file(&env, json!({"file_name": "u.fasta"}), ">a\nACGT\n>b\nAC\u{e9}GT\n>c\nGG\n".as_bytes().to_vec()).await?;
    assert_eq!(job["status"], "succeeded", "{job}");
    let p = &job["result"]["problems"][0];
    assert_eq!((p["record"].as_u64(), p["line"].as_u64(), p["column"].as_u64()), (Some(1), Some(4), Some(3)), "{p}");
    assert!(p["reason"].as_str().unwrap_or("").contains("0xc3"), "{p}");
    // The same file with the fail policy fails on that record.
    let (_, job) = parse_file(&env, json!({"file_name": "u.fasta", "on_invalid": "fail"}), ">a\nACGT\n>b\nAC\u{e9}GT\n".as_bytes().to_vec()).await?;
    assert_eq!((job["status"].as_str(), job["error"]["code"].as_str()), (Some("failed"), Some("invalid_record")), "{job}");

    // The system still works.
    let n = env.submit_n("1000").await?;
    assert_eq!(env.wait_finished(&n).await?["status"], "succeeded");
    Ok(())
}

/// The name of record `i` of the kill test's file: every 97th record repeats
/// the name of the record 100 before it (often in the same batch), every
/// 1009th from 30,000 on the name of one 29,999 before (across kills).
fn repeat_name(i: usize) -> String {
    if i >= 100 && i % 97 == 50 {
        repeat_name(i - 100)
    } else if i >= 30_000 && i % 1009 == 7 {
        repeat_name(i - 29_999)
    } else {
        format!("seq{i}")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_file_resumes_without_duplicates() -> R {
    // Tiny batches on two writers: many checkpoints, batches committed out of
    // order, and kills between a batch and its checkpoint.
    let mut env = TestEnv::start_with(Options {
        worker_env: vec![
            ("CRUNCH_GENES_BATCH_RECORDS".into(), "100".into()),
            ("CRUNCH_GENES_WRITERS".into(), "2".into()),
            ("CRUNCH_WORKER_THREADS".into(), "1".into()),
        ],
        ..Default::default()
    })
    .await?;
    // 60,000 records of 300-900 bases (~37 MB), some names repeated.
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let pool: Vec<u8> = (0..8192).map(|_| b"ACGT"[rng.gen_range(0..4)]).collect();
    let mut fasta = Vec::with_capacity(40 << 20);
    let total = 60_000;
    let mut names = std::collections::HashSet::new();
    let mut expected: Vec<i64> = Vec::new();
    for i in 0..total {
        let name = repeat_name(i);
        if names.insert(name.clone()) {
            expected.push(i as i64);
        }
        fasta.extend_from_slice(format!(">{name}\n").as_bytes());
        let (len, at) = (rng.gen_range(300..900), rng.gen_range(0..7000));
        let seq = &pool[at..at + len];
        for line in seq.chunks(70) {
            fasta.extend_from_slice(line);
            fasta.push(b'\n');
        }
    }
    let (_, file) = create(&env, json!({"file_name": "big.fasta"})).await?;
    let id = file["id"].as_str().unwrap_or_default().to_owned();
    let (status, file) = put(&env, &id, fasta).await?;
    assert_eq!(status, 202, "{file}");
    let job_id = file["job"]["id"].as_str().unwrap_or_default().to_owned();

    // Kill the worker at three points of the file, starting another each time.
    let file_uuid = uuid::Uuid::parse_str(&id)?;
    let t = Instant::now();
    for at in [5_000, 25_000, 45_000] {
        loop {
            let row = crunch_store::genes::get(&mut env.db()?, file_uuid)?.expect("file");
            if row.records_done >= at {
                break;
            }
            anyhow::ensure!(t.elapsed() < Duration::from_secs(120), "no progress: {row:?}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        env.kill_worker(0);
        let done_at_kill = crunch_store::genes::get(&mut env.db()?, file_uuid)?.expect("file").records_done;
        eprintln!("killed after {:?} at record {done_at_kill}", t.elapsed());
        assert!(done_at_kill < total as i64, "killed before the end");
        env.forget_worker(0);
        env.spawn_worker()?;
    }
    let job = env.wait_for(&job_id, Duration::from_secs(120), |s| matches!(s, "succeeded" | "failed")).await?;
    eprintln!("done after {:?}: {}", t.elapsed(), job["result"]["elapsed_ms"]);
    assert_eq!(job["status"], "succeeded", "{job}");
    let r = &job["result"];
    let stored = expected.len() as i64;
    assert_eq!(
        (r["stored"].as_i64(), r["duplicates"].as_i64(), r["records"].as_i64()),
        (Some(stored), Some(total as i64 - stored), Some(total as i64)),
        "{r}"
    );
    assert!(r["resumed_from"].as_i64().unwrap_or(0) >= 45_000, "{r}");
    assert_eq!(job["attempts"], 4);
    // Exactly the first record of each name, nothing pending.
    #[derive(diesel::QueryableByName)]
    struct Index {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        record_index: i64,
    }
    let indexes: Vec<i64> = diesel::sql_query(format!("SELECT record_index FROM gene_sequences WHERE file_id = '{id}' ORDER BY record_index"))
        .load::<Index>(&mut env.db()?)?
        .into_iter()
        .map(|r| r.record_index)
        .collect();
    assert!(indexes == expected, "stored {} records, expected {}", indexes.len(), expected.len());
    let pending = diesel::sql_query(format!("SELECT record_index FROM gene_sequences_pending WHERE file_id = '{id}'")).load::<Index>(&mut env.db()?)?;
    assert!(pending.is_empty(), "{} pending rows left", pending.len());
    let (_, page) = get_json(&env, &format!("/api/v1/gene-files/{id}/sequences?limit=1")).await?;
    assert_eq!(page["total"], stored, "every record exactly once");
    Ok(())
}

/// The end of a file, on the store alone: a pending record is kept when it
/// is the first of its name, whether the Bloom filter took the name's first
/// record for a repeat (a false positive) or not.
#[test]
fn pending_sequences_keep_the_first_of_each_name() -> R {
    use crunch_store::genes::{copy_batch, resolve_pending, CopyRows, NewGeneFile};
    let (mut conn, owner) = crunch_e2e::store_fixture()?;
    let file_id = uuid::Uuid::new_v4();
    let new = NewGeneFile {
        id: file_id,
        owner_id: owner,
        file_name: "f.fasta",
        format: crunch_domain::GeneFormat::Fasta,
        compression: None,
        on_invalid: crunch_domain::OnInvalid::Skip,
        object_key: "k",
    };
    crunch_store::genes::create(&mut conn, new)?;
    let (mut rows, mut pending) = (CopyRows::default(), CopyRows::default());
    // a: stored at 0, repeated at 2 and 5. b: a false positive at 1, so its
    // first record is pending too; repeated at 3. c: pending alone at 4.
    // d: stored at 6 with a name that differs from a pending one by case.
    rows.push(file_id, 0, 1, "a", "ACGT", 4, 0.5);
    pending.push(file_id, 1, 3, "b", "GGGG", 4, 1.0);
    pending.push(file_id, 2, 5, "a", "TTTT", 4, 0.0);
    copy_batch(&mut conn, &rows, &pending)?;
    let (mut rows, mut pending) = (CopyRows::default(), CopyRows::default());
    pending.push(file_id, 3, 7, "b", "CCCC", 4, 1.0);
    pending.push(file_id, 4, 9, "c", "AAAA", 4, 0.0);
    pending.push(file_id, 5, 11, "a", "ACGA", 4, 0.25);
    pending.push(file_id, 7, 15, "D", "ACGA", 4, 0.25);
    rows.push(file_id, 6, 13, "d", "AC", 2, 0.5);
    copy_batch(&mut conn, &rows, &pending)?;
    let kept = resolve_pending(&mut conn, file_id, |kept| json!({"kept": kept}))?;
    assert_eq!(kept, 3);
    let (stored, total) = crunch_store::genes::sequences_page(&mut conn, file_id, None, 0, 100)?;
    assert_eq!(total, 5);
    let got: Vec<(i64, &str, &str)> = stored.iter().map(|r| (r.record_index, r.name.as_str(), r.sequence.as_str())).collect();
    assert_eq!(got, vec![(0, "a", "ACGT"), (1, "b", "GGGG"), (4, "c", "AAAA"), (6, "d", "AC"), (7, "D", "ACGA")]);
    assert_eq!(crunch_store::genes::get(&mut conn, file_id)?.and_then(|f| f.checkpoint), Some(json!({"kept": 3})));
    // Nothing is left to resolve: a second run (a worker that died after the
    // first committed) keeps nothing more.
    assert_eq!(resolve_pending(&mut conn, file_id, |kept| json!({"kept": kept}))?, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_backend_presigned_upload_and_result_document() -> R {
    let env = TestEnv::start_with(Options { s3: true, ..Default::default() }).await?;
    let (status, file) = create(&env, json!({"file_name": "demo_file.fasta"})).await?;
    assert_eq!(status, 201);
    let id = file["id"].as_str().unwrap_or_default().to_owned();
    let url = file["upload"]["presigned_url"].as_str().expect("a presigned PUT URL with S3").to_owned();
    let (fasta, records) = demo_fasta();
    // The client uploads straight to S3, without the API key.
    let client = reqwest::Client::new();
    let t = Instant::now();
    let r = loop {
        let r = client.put(&url).body(fasta.clone()).send().await?;
        if r.status().is_success() || t.elapsed() > Duration::from_secs(10) {
            break r; // (the gateway creates the bucket in the background at start)
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(r.status().is_success(), "presigned PUT: {}", r.status());
    let r = env.http.post(env.url(&format!("/api/v1/gene-files/{id}/uploaded"))).bearer_auth(&env.key).send().await?;
    assert_eq!(r.status(), 202);
    let job_id = r.json::<Value>().await?["job"]["id"].as_str().unwrap_or_default().to_owned();
    let job = env.wait_finished(&job_id).await?;
    assert_eq!(job["result"]["stored"], 13, "{job}");
    // Calling it again does not start another run.
    let r = env.http.post(env.url(&format!("/api/v1/gene-files/{id}/uploaded"))).bearer_auth(&env.key).send().await?;
    assert_eq!(r.status(), 200);
    // The result document is in the bucket, behind a presigned GET.
    let (_, file) = get_json(&env, &format!("/api/v1/gene-files/{id}")).await?;
    let result_url = file["result_url"].as_str().expect("a presigned GET URL of the result").to_owned();
    let doc: Value = client.get(&result_url).send().await?.json().await?;
    assert_eq!(doc.as_array().map(Vec::len), Some(13));
    assert_eq!(doc[12]["sequence"], records[12].1.as_str());
    let (_, served) = get_json(&env, &format!("/api/v1/gene-files/{id}/result")).await?;
    assert_eq!(served, doc, "the gateway and the bucket serve the same document");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_uploads_of_one_file_start_one_job() -> R {
    let env = TestEnv::start().await?;
    let fasta: Vec<u8> = (0..20_000).flat_map(|i| format!(">s{i}\nACGTACGTAC\n").into_bytes()).collect();
    for round in 0..3 {
        let (status, file) = create(&env, json!({"file_name": format!("race{round}.fasta")})).await?;
        assert_eq!(status, 201);
        let id = file["id"].as_str().unwrap_or_default().to_owned();
        // Four uploads at once, each a slow stream, so that they overlap.
        let uploads: Vec<_> = (0..4)
            .map(|_| {
                let (http, url, key, body) = (env.http.clone(), env.url(&format!("/api/v1/gene-files/{id}/content")), env.key.clone(), fasta.clone());
                tokio::spawn(async move {
                    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = body.chunks(64 << 10).map(|c| Ok(c.to_vec())).collect();
                    let stream = futures::stream::iter(chunks).then(|c| async move {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        c
                    });
                    let r = http.put(url).bearer_auth(key).body(reqwest::Body::wrap_stream(stream)).send().await?;
                    anyhow::Ok(r.status().as_u16())
                })
            })
            .collect();
        let mut statuses = Vec::new();
        for u in uploads {
            statuses.push(u.await??);
        }
        statuses.sort();
        assert_eq!(statuses, vec![202, 409, 409, 409], "round {round}");
        let (_, file) = get_json(&env, &format!("/api/v1/gene-files/{id}")).await?;
        let job_id = file["job"]["id"].as_str().unwrap_or_default().to_owned();
        let job = env.wait_for(&job_id, Duration::from_secs(120), |s| matches!(s, "succeeded" | "failed" | "cancelled")).await?;
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(job["result"]["stored"], 20_000, "{job}");
        let mut conn = env.db()?;
        let jobs: i64 = diesel::sql_query(format!("SELECT count(*) AS n FROM jobs WHERE kind = 'genes' AND params->>'file_id' = '{id}'"))
            .get_result::<Count>(&mut conn)?
            .n;
        assert_eq!(jobs, 1, "round {round}: one job for the file");
    }
    Ok(())
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Files under `dir`, at any depth.
fn files_under(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| if e.path().is_dir() { files_under(&e.path()) } else { 1 })
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_gene_files_and_expired_jobs_are_swept_in_batches() -> R {
    let env = TestEnv::start_with(Options {
        worker_env: vec![
            ("CRUNCH_RETENTION_DEFAULT".into(), "forever".into()),
            ("CRUNCH_RETENTION".into(), "factorize=3s,genes=3s".into()),
            ("CRUNCH_RETENTION_INTERVAL_MS".into(), "300".into()),
            ("CRUNCH_RETENTION_BATCH".into(), "2".into()),
            ("CRUNCH_RETENTION_PAUSE_MS".into(), "0".into()),
        ],
        ..Default::default()
    })
    .await?;
    let mut conn = env.db()?;
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut count = |sql: String| -> anyhow::Result<i64> { Ok(diesel::sql_query(sql).get_result::<Count>(&mut conn)?.n) };
    let (expiring, job) = parse_file(&env, json!({"file_name": "expiring.fasta"}), demo_fasta().0).await?;
    assert_eq!(job["status"], "succeeded", "{job}");
    let (doomed, job) = parse_file(&env, json!({"file_name": "doomed.csv"}), demo_csv()).await?;
    assert_eq!(job["status"], "succeeded", "{job}");
    let (status, never) = create(&env, json!({"file_name": "never.fasta"})).await?;
    assert_eq!(status, 201);
    let factorized = vec![env.submit_n("91").await?, env.submit_n("92").await?, env.submit_n("93").await?];
    let r = env.submit(json!({"kind": "primes", "params": {"from": "0", "to": "1000", "mode": "count"}})).await?;
    let body = r.json::<Value>().await?;
    let primes = body["id"].as_str().with_context(|| format!("{body}"))?.to_owned();
    for id in factorized.iter().chain([&primes]) {
        env.wait_finished(id).await?;
    }
    let blobs = crunch_e2e::blob_dir(&env.namespace);
    assert_eq!(files_under(&blobs), 2, "two uploads");
    let stored = count("SELECT count(*) AS n FROM gene_sequences".into())?;

    // Deleting: gone from the API at once; 404 for what names no file of
    // this key; 401 without one.
    for id in [&doomed, never["id"].as_str().unwrap_or_default()] {
        let r = env.http.delete(env.url(&format!("/api/v1/gene-files/{id}"))).bearer_auth(&env.key).send().await?;
        assert_eq!(r.status(), 202, "{id}");
        assert_eq!(r.json::<Value>().await?, json!({"id": id, "deleted": true}));
        assert_eq!(get_json(&env, &format!("/api/v1/gene-files/{id}")).await?.0, 404);
        assert_eq!(get_json(&env, &format!("/api/v1/gene-files/{id}/sequences")).await?.0, 404);
    }
    for id in [doomed.as_str(), "6b1f4c1e-2f4e-4c3b-9a55-0c1f7e2d9b10", "not-a-uuid"] {
        let r = env.http.delete(env.url(&format!("/api/v1/gene-files/{id}"))).bearer_auth(&env.key).send().await?;
        assert_eq!(r.status(), 404, "{id}");
    }
    assert_eq!(env.http.delete(env.url(&format!("/api/v1/gene-files/{expiring}"))).send().await?.status(), 401);
    let (_, listed) = get_json(&env, "/api/v1/gene-files").await?;
    assert_eq!(listed["total"], 1, "{listed}");

    // The sweeper removes the deleted file's sequences two at a time, then
    // its blob and row; after 3 s the factorizations and the gene-file jobs
    // expire (the other file with its job), the prime range stays.
    let t = Instant::now();
    loop {
        let files = count("SELECT count(*) AS n FROM gene_files".into())?;
        let sequences = count("SELECT count(*) AS n FROM gene_sequences".into())?;
        let jobs = count("SELECT count(*) AS n FROM jobs".into())?;
        if files == 0 && sequences == 0 && jobs == 1 && files_under(&blobs) == 0 {
            break;
        }
        anyhow::ensure!(t.elapsed() < Duration::from_secs(40), "files {files}, sequences {sequences}, jobs {jobs}, blobs {} left", files_under(&blobs));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for id in &factorized {
        assert_eq!(env.http.get(env.url(&format!("/api/v1/jobs/{id}"))).bearer_auth(&env.key).send().await?.status(), 404);
    }
    assert_eq!(env.wait_finished(&primes).await?["status"], "succeeded");
    assert_eq!(get_json(&env, &format!("/api/v1/gene-files/{expiring}")).await?.0, 404);
    // Counted on the worker's health listener.
    let health = &env.worker_health[0];
    for (what, n) in [("jobs", 5.0), ("sequences", stored as f64), ("gene_files", 3.0), ("blobs", 2.0)] {
        let label = format!("what=\"{what}\"");
        env.wait_metric(health, "crunch_worker_retention_removed_total", &label, |v| v == n, Duration::from_secs(10)).await?;
    }
    Ok(())
}
