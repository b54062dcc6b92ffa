//! OpenAPI fuzzing: schemathesis (PyPI; scripts/test.sh installs it in
//! `$HOME/.cache/crunch-tools/st-venv`) generates requests for every operation
//! of the served document, valid and invalid, and runs every check on every
//! answer: schema-valid requests accepted, schema-violating ones refused,
//! responses as documented. `tests/fuzz/fuzz_hooks.py` applies the rules JSON
//! Schema cannot state to the valid requests; `tests/fuzz/schemathesis.toml`
//! names the two checks that do not apply. The gateway's own request counter
//! proves how many requests reached it, that every route was exercised and
//! that none got a 5xx.

use std::collections::BTreeMap;
use std::time::Instant;

use crunch_e2e::{Options, TestEnv};
use crunch_gateway::protect::ProtectArgs;

type R = anyhow::Result<()>;

/// `crunch_http_requests_total` from /metrics: (method, route, status) -> count.
async fn requests(env: &TestEnv) -> anyhow::Result<BTreeMap<(String, String, String), u64>> {
    let text = env.http.get(env.url("/metrics")).bearer_auth(&env.key).send().await?.text().await?;
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("crunch_http_requests_total{")) {
        let (labels, value) = line.rsplit_once(' ').unwrap_or_default();
        let label = |name: &str| {
            labels.split(&format!("{name}=\"")).nth(1).and_then(|s| s.split('"').next()).unwrap_or_default().to_owned()
        };
        out.insert((label("method"), label("route"), label("status")), value.parse().unwrap_or(0));
    }
    Ok(out)
}

fn schemathesis() -> String {
    std::env::var("CRUNCH_SCHEMATHESIS").unwrap_or_else(|_| {
        format!("{}/.cache/crunch-tools/st-venv/bin/st", std::env::var("HOME").unwrap_or_default())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_response_off_the_spec() -> R {
    // No rate limit: the fuzzer is one key sending as fast as it can.
    let env = TestEnv::start_with(Options {
        protect: ProtectArgs { rate_limit_per_sec: 0, ..Default::default() },
        ..Default::default()
    })
    .await?;
    let examples = std::env::var("CRUNCH_FUZZ_EXAMPLES").unwrap_or_else(|_| "120".into());
    let report = std::env::temp_dir().join(format!("crunch-fuzz-{}", env.namespace));
    // Only what the fuzzer caused counts (readiness polls before it began
    // may have seen 503 while the worker connected).
    let before = requests(&env).await?;
    let t = Instant::now();
    let out = tokio::process::Command::new(schemathesis())
        .args([
            "--config-file",
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fuzz/schemathesis.toml"),
            "run",
            &env.url("/api-docs/openapi.json"),
            "--url",
            &env.base,
            "--header",
            &format!("Authorization: Bearer {}", env.key),
            // Every check (the configuration file names the two exceptions).
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--max-examples",
            &examples,
            // One worker: with several threads, hypothesis's parses of its
            // own sources die inside CPython 3.11's ast module ("AST
            // constructor recursion depth mismatch"; docs/security.md).
            "--workers",
            "1",
            "--seed",
            "8",
            "--no-color",
            "--report-dir",
            &report.display().to_string(),
            "--report",
            "junit",
        ])
        // The rules JSON Schema cannot state (two fields compared, what a
        // URL parser accepts), applied to the schema-valid requests.
        .env("SCHEMATHESIS_HOOKS", "fuzz_hooks")
        .env("PYTHONPATH", concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fuzz"))
        .env("CRUNCH_FUZZ_LIMITS", serde_json::to_string(&crunch_domain::Limits::default())?)
        .output()
        .await
        .map_err(|e| anyhow::anyhow!("running {} failed ({e}): scripts/test.sh installs schemathesis", schemathesis()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let tail: String = stdout.lines().rev().take(200).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
    eprintln!("{tail}");
    let mut counts = requests(&env).await?;
    for (k, n) in counts.iter_mut() {
        *n -= before.get(k).copied().unwrap_or(0);
    }
    counts.retain(|_, n| *n > 0);
    let total: u64 = counts.iter().filter(|((_, route, _), _)| route != "/metrics").map(|(_, n)| n).sum();
    let server_errors: Vec<_> = counts.iter().filter(|((_, _, s), _)| s.starts_with('5')).collect();
    let mut per_route: BTreeMap<String, u64> = BTreeMap::new();
    for ((method, route, _), n) in &counts {
        *per_route.entry(format!("{method} {route}")).or_default() += n;
    }
    eprintln!("schemathesis: {total} requests in {:.1} s; per route: {per_route:?}", t.elapsed().as_secs_f64());
    assert!(out.status.success(), "schemathesis reported failures (see above)");
    assert!(server_errors.is_empty(), "5xx answers: {server_errors:?}");
    assert!(total >= 2000, "only {total} requests reached the gateway");
    // Every operation of the document got requests.
    let doc: serde_json::Value = env.http.get(env.url("/api-docs/openapi.json")).send().await?.json().await?;
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in item.as_object().into_iter().flatten().map(|(m, _)| m.to_uppercase()) {
            let hit = per_route.get(&format!("{method} {path}")).copied().unwrap_or(0);
            assert!(hit > 0, "{method} {path} was never requested");
        }
    }
    Ok(())
}
