"""Schemathesis hooks of fuzz.rs: the rules of the API that JSON Schema
cannot state, applied to the schema-valid requests the fuzzer generates.

The OpenAPI document states every rule it can (types, ranges, enums,
patterns, which fields go together); these rules compare two fields or
depend on what a URL parser accepts, and are written in the document's
descriptions. Without them a schema-valid request such as a `primes` job
with `from` > `to` would be refused with a 400 and reported as "valid data
rejected". Only positive cases are changed: negative ones must still be
refused, and are.
"""

import json
import os
import urllib.parse

import schemathesis

MAX_U64 = 2**64 - 1
LIMITS = json.loads(os.environ.get("CRUNCH_FUZZ_LIMITS", "{}"))
JOB_ROUTES = ("/api/v1/jobs", "/api/v1/jobs/validate")


def valid_url(raw):
    """An http URL that the gateway's parser accepts, carrying `raw` in its path.

    `.invalid` never resolves, so a URL check of it ends with a DNS finding
    and sends no traffic anywhere."""
    path = urllib.parse.quote(str(raw)[:1000], safe="")
    return f"http://fuzz.invalid/{path}"


def as_int(v):
    return int(v) if isinstance(v, int) else int(v or "0")


def fix_primes(params):
    """`from` <= `to`, and `to` - `from` within the mode's limit."""
    lo, hi = as_int(params["from"]), as_int(params["to"])
    if lo > hi:
        lo, hi = hi, lo
    width = LIMITS.get("primes_list_max_width" if params.get("mode") == "list" else "primes_count_max_width", 10**9)
    hi = min(hi, lo + width)
    params["from"], params["to"] = str(lo), str(hi)


@schemathesis.hook
def map_case(context, case):
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return case
    path, method = case.operation.path, case.method.upper()
    if method == "POST" and path in JOB_ROUTES and isinstance(case.body, dict):
        kind, params = case.body.get("kind"), case.body.get("params")
        if isinstance(params, dict):
            if kind == "primes":
                fix_primes(params)
            elif kind == "check_url":
                params["url"] = valid_url(params.get("url"))
            elif kind == "scrape_hotels" and isinstance(params.get("start_url"), str):
                params["start_url"] = valid_url(params["start_url"])
    elif method == "GET" and path == "/api/v1/url-checks" and case.query and isinstance(case.query.get("url"), str):
        case.query["url"] = valid_url(case.query["url"])
    return case
