"""Checks a deployed Crunch stack from outside, as scripts/stack-test.sh runs it.

Every API call goes through the gateway's published port; docker commands
only kill, scale and inspect tasks, and read what the services stored.

    python3 scripts/stack_checks.py smoke   # every job kind end to end, Adminer, no secret in any environment
    python3 scripts/stack_checks.py faults  # kills, a database restart, scaling

Settings (environment): CRUNCH_STACK (stack name), CRUNCH_PUBLIC_PORT,
CRUNCH_ADMINER_TEST_PORT, API_KEY_FILE (the admin key deploy.sh wrote).
Prints one line per check with its figures; exits 1 at the first failure.
"""

import concurrent.futures
import http.cookiejar
import json
import os
import random
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from primegen import prime  # scripts/primegen.py, beside this file

STACK = os.environ.get("CRUNCH_STACK", "crunch")
BASE = f"http://127.0.0.1:{os.environ.get('CRUNCH_PUBLIC_PORT', '8080')}"
ADMINER_PORT = int(os.environ.get("CRUNCH_ADMINER_TEST_PORT", "18088"))
KEY = open(os.environ.get("API_KEY_FILE", ".deploy/admin-api-key")).read().strip()
RESULTS = []


class CheckFailed(Exception):
    pass


def ensure(cond, message):
    if not cond:
        raise CheckFailed(message)


def report(name, **figures):
    line = f"ok   {name}" + "".join(f"  {k}={v}" for k, v in figures.items())
    RESULTS.append(line)
    print(line, flush=True)


# --- HTTP ----------------------------------------------------------------------

def request(method, path, body=None, key=KEY, headers=None, raw=None, timeout=30):
    """(status, headers, body bytes); never raises on an HTTP status."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(BASE + path, data=data, method=method)
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    if body is not None:
        req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
        return 0, {}, str(e).encode()


def api(method, path, body=None, key=KEY, expect=(200, 201, 202)):
    """One API call; over the key's rate limit it waits as Retry-After says."""
    for _ in range(60):
        status, headers, data = request(method, path, body, key)
        if status != 429:
            break
        time.sleep(float(headers.get("Retry-After", "1")))
    ensure(status in expect, f"{method} {path}: {status} {data[:300]!r}")
    return json.loads(data) if data else None


def submit(kind, params, key=KEY):
    return api("POST", "/api/v1/jobs", {"kind": kind, "params": params, "fresh": True}, key)["id"]


def wait_job(job_id, limit=120, key=KEY):
    deadline = time.time() + limit
    while time.time() < deadline:
        job = api("GET", f"/api/v1/jobs/{job_id}", key=key)
        if job["status"] in ("succeeded", "failed", "cancelled"):
            ensure(job["status"] == "succeeded", f"job {job_id} ended {job['status']}: {job.get('error')}")
            return job
        time.sleep(0.2)
    raise CheckFailed(f"job {job_id} not finished within {limit} s")


# --- docker ----------------------------------------------------------------------

def docker(*args, check=True):
    out = subprocess.run(["docker", *args], capture_output=True, text=True)
    if check and out.returncode != 0:
        raise CheckFailed(f"docker {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout.strip()


def container(service):
    """A running container of the stack's service."""
    for _ in range(300):
        ids = docker("ps", "-q", "--filter", f"label=com.docker.swarm.service.name={STACK}_{service}", check=False).split()
        if ids:
            return ids[0]
        time.sleep(0.2)
    raise CheckFailed(f"no running container of {service}")


def psql(sql):
    return docker("exec", container("postgres"), "psql", "-U", "crunch", "-d", "crunch", "-tAc", sql)


def secret_value(service, name):
    return docker("exec", container(service), "cat", f"/run/secrets/{name}")


def wait_until(what, cond, limit):
    deadline = time.time() + limit
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.25)
    raise CheckFailed(f"{what} not within {limit} s")


def healthy_services():
    """Services whose replicas all run and whose containers are all healthy."""
    rows = docker("stack", "services", STACK, "--format", "{{.Name}} {{.Replicas}}").splitlines()
    pending = [r for r in rows if (lambda a, b: a != b)(*r.split()[1].split("/"))]
    unhealthy = [r for r in docker("ps", "--filter", f"label=com.docker.stack.namespace={STACK}",
                                   "--format", "{{.Names}} {{.Status}}").splitlines() if "(healthy)" not in r]
    return pending, unhealthy


# --- smoke -------------------------------------------------------------------------

def smoke_factorize():
    t = time.time()
    job = wait_job(submit("factorize", {"n": "600851475143"}))
    primes = [f["p"] for f in job["result"]["factors"]]
    ensure(primes == ["71", "839", "1471", "6857"], f"factors {primes}")
    big = wait_job(submit("factorize", {"n": str((2**61 - 1) * (2**89 - 1))}))
    ensure([f["p"] for f in big["result"]["factors"]] == [str(2**61 - 1), str(2**89 - 1)], f"factors {big['result']}")
    report("factorize (a quick job and a 150-bit semiprime)", seconds=round(time.time() - t, 2), method=big["result"]["method"])


def smoke_primes():
    t = time.time()
    job = wait_job(submit("primes", {"from": 0, "to": 10_000_000, "mode": "list"}))
    ensure(job["result"]["count"] == 664_579, f"count {job['result']['count']}")
    status, headers, body = request("GET", f"/api/v1/jobs/{job['id']}/result", headers={"Accept": "text/plain"}, timeout=120)
    lines = body.split()
    ensure(status == 200 and len(lines) == 664_579 and lines[0] == b"2" and lines[-1] == b"9999991", f"stream: {status}, {len(lines)} lines")
    page = api("GET", f"/api/v1/jobs/{job['id']}/result?offset=1000&limit=5")
    ensure(page["items"] == [7927, 7933, 7937, 7949, 7951], f"page {page}")
    report("primes list to 10^7 and its stream", primes=len(lines), stream_bytes=len(body), seconds=round(time.time() - t, 2))


def smoke_url_check():
    job = wait_job(submit("check_url", {"url": "http://fixtures:8000/ok.html"}))
    r = job["result"]
    ensure(r["ok"] and r["status"] == 200, f"check {r}")
    report("URL check of a fixture site on the overlay", status=r["status"], total_ms=r["timings_ms"]["total"])


def smoke_scrape_and_select():
    t = time.time()
    job = wait_job(submit("scrape_hotels", {"city": "Paris", "pages": 1}), limit=180)
    r = job["result"]
    ensure(r["hotels"] == 30 and r["details_fetched"] == 30 and not r["failures"], f"scrape {r}")
    hotels = api("GET", "/api/v1/hotels?q=Fixture&limit=100")
    ensure(hotels["total"] >= 30, f"hotels {hotels['total']}")
    ids = sorted(h["id"] for h in hotels["items"] if h["name"].startswith("Fixture Hotel"))[:5]
    described = [h for h in hotels["items"] if h["description"] and "Seine" in h["description"]]
    ensure(len(described) >= 30, f"{len(described)} hotels with their detail page's description")
    scraped = time.time()
    api("POST", "/api/v1/selections", {"hotel_ids": ids})
    wait_until("the selections stored by the persister",
               lambda: sorted(s["id"] for s in api("GET", "/api/v1/selections?limit=100")["items"]) == ids, 60)
    report("scrape of the fixture hotel site, selections through Kafka to the persister",
           hotels=r["hotels"], scrape_s=round(scraped - t, 2), selection_stored_s=round(time.time() - scraped, 2))


def smoke_genes():
    t = time.time()
    records = 2000
    fasta = "".join(f">seq{i} smoke\n{'ACGT' * (10 + i % 7)}\n" for i in range(records)).encode()
    f = api("POST", "/api/v1/gene-files", {"file_name": "smoke.fasta"})
    status, _, body = request("PUT", f"/api/v1/gene-files/{f['id']}/content", raw=fasta, headers={"Content-Type": "application/octet-stream"})
    ensure(status == 202, f"upload {status} {body[:200]!r}")
    job = wait_job(json.loads(body)["job"]["id"])
    ensure(job["result"]["stored"] == records, f"genes {job['result']}")
    seqs = api("GET", f"/api/v1/gene-files/{f['id']}/sequences?limit=10")
    ensure(seqs["total"] == records, f"sequences {seqs['total']}")
    listing = docker("exec", container("minio"), "sh", "-c", "find /data -type f | head -200")
    ensure(f["id"] in listing, f"the upload is not in the S3 service's data: {listing[:500]}")
    report("gene file uploaded, stored in S3, parsed", records=seqs["total"], bytes=len(fasta), seconds=round(time.time() - t, 2))


def smoke_adminer():
    """Adminer through the one command docs/deploy.md gives (scripts/adminer.sh):
    it logs into PostgreSQL over the overlay network and lists Crunch's
    tables, and the port is closed again when the command is stopped."""
    svc = f"{STACK}_adminer"
    env = dict(os.environ, CRUNCH_ADMINER_PORT=str(ADMINER_PORT))
    opened = subprocess.Popen(["bash", "scripts/adminer.sh"], env=env, stdout=subprocess.PIPE, text=True)
    try:
        first = opened.stdout.readline()
        ensure(first.startswith("Adminer is at http://127.0.0.1:"), f"scripts/adminer.sh printed {first!r}")
        url = first.split(" at ", 1)[1].strip()
        password = secret_value("postgres", "crunch_postgres_password")
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        base = f"http://127.0.0.1:{ADMINER_PORT}/"
        login = urllib.parse.urlencode({"auth[driver]": "pgsql", "auth[server]": "postgres", "auth[username]": "crunch",
                                        "auth[password]": password, "auth[db]": "crunch"}).encode()
        opener.open(urllib.request.Request(base, data=login), timeout=20).read()
        page = _get(opener, url)
        tables = sorted(set(re.findall(r"table=([a-z_]+)", page or "")))
        for t in ("jobs", "hotels", "selections", "gene_sequences", "api_keys"):
            ensure(t in tables, f"Adminer lists no table {t}: {tables}")
    finally:
        opened.terminate()
        opened.wait(timeout=120)
    ports = docker("service", "inspect", "--format", "{{json .Spec.EndpointSpec.Ports}}", svc)
    ensure(ports in ("null", "[]", ""), f"Adminer's port is still published: {ports}")
    report("Adminer opened by scripts/adminer.sh, logged into PostgreSQL over the overlay, closed on SIGTERM", tables=len(tables))


def _get(opener, url):
    try:
        return opener.open(url, timeout=10).read().decode("utf-8", "replace")
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def smoke_no_secret_in_environments():
    secrets = {
        "postgres password": secret_value("postgres", "crunch_postgres_password"),
        "admin API key": KEY,
        "MinIO password": secret_value("minio", "crunch_minio_root_password"),
        "AMQP URL": secret_value("worker", "crunch_amqp_url"),
    }
    ids = docker("ps", "-q", "--filter", f"label=com.docker.stack.namespace={STACK}").split()
    for cid in ids:
        env = json.loads(docker("inspect", "--format", "{{json .Config.Env}}", cid))
        name = docker("inspect", "--format", "{{.Name}}", cid)
        for what, value in secrets.items():
            leaked = [e.split("=", 1)[0] for e in env if value and value in e]
            ensure(not leaked, f"{name}: the {what} is in its environment ({leaked})")
    report("no password or key in any container's environment", containers=len(ids))


def smoke_healthy():
    pending, unhealthy = healthy_services()
    ensure(not pending and not unhealthy, f"not healthy: {pending} {unhealthy}")
    report("every service running and healthy")


# --- faults ------------------------------------------------------------------------

def submit_many(params_list, kind="factorize", key=KEY):
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        return list(pool.map(lambda p: submit(kind, p, key), params_list))


def job_states(ids):
    quoted = ",".join(f"'{i}'" for i in ids)
    rows = psql(f"SELECT status, count(*), max(attempts) FROM jobs WHERE id IN ({quoted}) GROUP BY status")
    return {r.split("|")[0]: (int(r.split("|")[1]), int(r.split("|")[2])) for r in rows.splitlines() if r}


def fault_worker_kill():
    # Queued while no worker runs (submissions are slower than the worker,
    # there would be no backlog to kill it in), then one worker.
    svc = f"{STACK}_worker"
    docker("service", "scale", "--detach=false", f"{svc}=0")
    ids = submit_many([{"n": n} for n in semiprimes(2000, 50, 1)])
    # Not waiting for the scale to converge: the CLI watches the new task for
    # 5 s more, time enough for a worker to run through most of the jobs.
    docker("service", "scale", "--detach=true", f"{svc}=1")
    wait_until("a tenth of the jobs done", lambda: job_states(ids).get("succeeded", (0, 0))[0] >= 200, 300)
    docker("kill", container("worker"))
    killed_at = time.time()
    done_at_kill = job_states(ids).get("succeeded", (0, 0))[0]
    ensure(done_at_kill < 1900, f"{done_at_kill} of 2,000 jobs were already done when the worker was killed")
    wait_until("every job succeeded", lambda: job_states(ids).get("succeeded", (0, 0))[0] == 2000, 600)
    states = job_states(ids)
    quoted = ",".join(f"'{i}'" for i in ids)
    with_results = int(psql(f"SELECT count(*) FROM jobs WHERE id IN ({quoted}) AND finished_at IS NOT NULL AND result IS NOT NULL"))
    ensure(set(states) == {"succeeded"} and with_results == 2000, f"states {states}, {with_results} with results")
    report("docker kill of the worker mid-run of 2,000 jobs: every job once", done_at_kill=done_at_kill,
           succeeded=states["succeeded"][0], max_attempts=states["succeeded"][1], recovered_s=round(time.time() - killed_at, 1))


def fault_persister_kill():
    keys = [docker("exec", container("gateway"), "crunch-gateway", "keys", "create", "--name", f"stack-sel-{i}") for i in range(12)]
    hotels = sorted(h["id"] for h in api("GET", "/api/v1/hotels?q=Fixture&limit=100")["items"])[:30]
    work = [(k, h) for h in hotels for k in keys]
    random.Random(2).shuffle(work)
    killed = []

    def send(i_kh):
        i, (k, h) = i_kh
        if i == len(work) // 3 and not killed:
            killed.append(time.time())
            docker("kill", container("persister"))
        for _ in range(100):
            status, _, _ = request("POST", "/api/v1/selections", {"hotel_ids": [h]}, key=k)
            if status == 202:
                return
            time.sleep(0.2)
        raise CheckFailed("a selection was not accepted")

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(send, enumerate(work)))
    owner_ids = "SELECT id FROM api_keys WHERE name LIKE 'stack-sel-%'"
    wait_until("every selection stored", lambda: int(psql(f"SELECT count(*) FROM selections WHERE owner_id IN ({owner_ids})")) == len(work), 180)
    for k in keys:
        got = sorted(s["id"] for s in api("GET", "/api/v1/selections?limit=100", key=k)["items"])
        ensure(got == hotels, f"a key's selections: {len(got)} of {len(hotels)}")
    report("docker kill of the persister mid-stream of selections: all stored once", selections=len(work),
           stored_after_kill_s=round(time.time() - killed[0], 1))


def fault_database_restart():
    docker("kill", container("postgres"))
    down_at = time.time()
    seen_503 = False
    while time.time() - down_at < 120:
        status, _, _ = request("GET", "/api/v1/jobs?limit=1", timeout=10)
        if status == 503:
            seen_503 = True
        elif status == 200 and seen_503:
            break
        ensure(status in (200, 503), f"while the database restarts the API answered {status}")
        time.sleep(0.2)
    ensure(seen_503, "the API never answered 503 while PostgreSQL was down")
    wait_job(submit("factorize", {"n": "1000000016000000063"}), limit=120)
    report("PostgreSQL task killed: 503 while down, recovers by itself", back_after_s=round(time.time() - down_at, 1))


def semiprimes(count, bits, seed):
    """Distinct products of two random primes of `bits` bits each."""
    rng = random.Random(seed)
    return [str(prime(rng, bits) * prime(rng, bits)) for _ in range(count)]


def fault_scale():
    """Workers 0 while the jobs are queued, then k: the drain rate is the jobs
    over the span from the first start to the last finish (database times)."""
    figures = {}
    svc = f"{STACK}_worker"
    for replicas in (1, 2, 4):
        docker("service", "scale", "--detach=false", f"{svc}=0")
        ids = submit_many([{"n": n} for n in semiprimes(800, 44, 100 + replicas)])
        docker("service", "scale", "--detach=false", f"{svc}={replicas}")
        wait_until("the jobs done", lambda: job_states(ids).get("succeeded", (0, 0))[0] == len(ids), 900)
        quoted = ",".join(f"'{i}'" for i in ids)
        span = float(psql(f"SELECT extract(epoch FROM max(finished_at) - min(started_at)) FROM jobs WHERE id IN ({quoted})"))
        figures[f"x{replicas}"] = f"{len(ids) / span:.0f}/s"
    docker("service", "scale", "--detach=false", f"{svc}=1")
    wait_until("one worker healthy", lambda: not any(healthy_services()), 180)
    report("docker service scale worker 1 -> 2 -> 4, drain of 800 88-bit semiprimes each", **figures)


def main():
    which = sys.argv[1] if len(sys.argv) > 1 else "smoke"
    checks = {
        "smoke": [smoke_healthy, smoke_factorize, smoke_primes, smoke_url_check, smoke_scrape_and_select, smoke_genes,
                  smoke_adminer, smoke_no_secret_in_environments],
        "faults": [fault_worker_kill, fault_persister_kill, fault_database_restart, fault_scale, smoke_healthy],
    }[which]
    try:
        for check in checks:
            check()
    except CheckFailed as e:
        print(f"FAIL {check.__name__}: {e}", flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
