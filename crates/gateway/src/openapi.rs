//! The OpenAPI document: operations and schemas are declared next to their
//! handlers, and collected as the routes are registered ([`document`]).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;

use crunch_domain::{JobKind, JobStatus, Limits};

use crate::routes::results;

#[derive(OpenApi)]
#[openapi(
    info(title = "Crunch API", description = "Submit CPU- and I/O-heavy jobs, follow them live, read their results. Every error is `{\"error\": {\"code\", \"message\"}}`."),
    // Only what no route's operation names: the rest is collected from the routes.
    components(schemas(crunch_domain::JobEvent, crunch_domain::EventType, crunch_domain::FactorizeResult, crunch_domain::FactorizePartial, crunch_domain::PrimesResult, crunch_domain::NthPrimeResult, crunch_domain::CheckUrlResult, crunch_domain::ScrapeHotelsResult, crunch_domain::GenesResult, results::PrimePage)),
    modifiers(&BearerAuth),
    tags((name = "jobs", description = "Job submission and results"), (name = "events", description = "Live job events"), (name = "url-checks", description = "URL-check history"), (name = "hotels", description = "Cities, hotels and selections"),
         (name = "operations", description = "Health, readiness and metrics"), (name = "dashboard", description = "Settings of the dashboard page"),
         (name = "gene-files", description = "Gene files: upload, parse, results"), (name = "monitors", description = "URLs checked every interval"))
)]
pub struct ApiDoc;

/// The whole document: [`ApiDoc`] with the operation of every route that
/// `routes::configure` registers, and the answers `crate::protect` adds.
pub fn document() -> utoipa::openapi::OpenApi {
    let (_, mut doc) = actix_web::App::new().into_utoipa_app().openapi(ApiDoc::openapi()).configure(crate::routes::configure).split_for_parts();
    ProtectionResponses.modify(&mut doc);
    doc
}

/// The document as served (`/api-docs/openapi.json`): [`document`] with a
/// job submission's schema stated kind by kind under this gateway's
/// limits: `{kind, params, fresh}` as a `oneOf` with each kind's parameters
/// ([`crunch_domain::Params::schema`]). JSON Schema cannot compare two
/// fields (`from` <= `to`) nor say what a URL parser accepts: those rules are
/// in the descriptions.
pub fn served(limits: &Limits, monitor_min_interval_s: u64) -> serde_json::Value {
    let mut doc = serde_json::to_value(document()).expect("the document is plain JSON");
    let kinds: Vec<serde_json::Value> = JobKind::ALL
        .iter()
        .filter(|k| crate::routes::jobs::submittable_kind(**k))
        .map(|kind| {
            serde_json::json!({
                "title": kind.as_str(),
                "type": "object",
                "required": ["kind", "params"],
                "additionalProperties": false,
                "properties": {
                    "kind": {"type": "string", "enum": [kind.as_str()]},
                    "params": kind.params_schema(limits),
                    "fresh": {"type": "boolean", "description": "Run again even if an identical job exists (default false)"},
                },
            })
        })
        .collect();
    doc["components"]["schemas"]["SubmitRequest"] = serde_json::json!({
        "description": "A job submission: a kind and its parameters",
        "oneOf": kinds,
        "example": {"kind": "factorize", "params": {"n": "1000"}},
    });
    doc["components"]["schemas"]["CreateGeneFile"] = crunch_domain::GeneFileSpec::schema();
    // A monitor's body: a URL check's parameters and the interval.
    let mut monitor = JobKind::CheckUrl.params_schema(limits);
    monitor["required"] = serde_json::json!(["url", "interval_s"]);
    monitor["properties"]["interval_s"] = serde_json::json!({"type": "integer", "minimum": monitor_min_interval_s, "maximum": crate::routes::monitors::MAX_INTERVAL_S,
        "description": "Seconds between two checks"});
    monitor["example"] = serde_json::json!({"url": "https://example.com/", "interval_s": 60});
    doc["components"]["schemas"]["CreateMonitor"] = monitor;
    doc["components"]["schemas"]["UpdateMonitor"]["additionalProperties"] = false.into();
    let ids = &mut doc["components"]["schemas"]["SelectRequest"]["properties"]["hotel_ids"];
    ids["minItems"] = 1.into();
    ids["maxItems"] = crate::routes::hotels::MAX_SELECTION.into();
    ids["items"]["minimum"] = 1.into();
    ids["items"]["maximum"] = crunch_domain::kinds::MAX_JSON_INT.into();
    // `crate::protect` refuses a NUL (%00) anywhere in a query string.
    for op in doc["paths"].as_object_mut().into_iter().flat_map(|p| p.values_mut()).filter_map(|item| item.get_mut("get")) {
        for param in op.get_mut("parameters").and_then(|p| p.as_array_mut()).into_iter().flatten().filter(|p| p["in"] == "query") {
            let schema = &mut param["schema"];
            if schema["type"] == "string" && schema.get("pattern").is_none() && schema.get("enum").is_none() {
                schema["pattern"] = "^[^\\u0000]*$".into();
            }
        }
    }
    // The job listing's filters: empty means no filter.
    let names = |all: Vec<&'static str>| std::iter::once("").chain(all).collect::<Vec<&'static str>>();
    set_query_schema(&mut doc, "/api/v1/jobs", "kind", serde_json::json!({"type": "string", "enum": names(JobKind::names())}));
    set_query_schema(&mut doc, "/api/v1/jobs", "status", serde_json::json!({"type": "string", "enum": names(JobStatus::ALL.iter().map(|s| s.as_str()).collect())}));
    // Any u64 (utoipa writes int64, whose range ends at 2^63 - 1).
    set_query_schema(&mut doc, "/api/v1/jobs/{id}/result", "offset", serde_json::json!({"type": "integer", "minimum": 0, "maximum": u64::MAX}));
    set_query_schema(&mut doc, "/api/v1/jobs", "before", serde_json::json!({"type": "string", "maxLength": 64, "pattern": crunch_domain::kinds::decimal_pattern(i64::MAX as u64)}));
    doc
}

/// Replaces the schema of a GET operation's query parameter.
fn set_query_schema(doc: &mut serde_json::Value, path: &str, name: &str, schema: serde_json::Value) {
    let params = doc["paths"][path]["get"]["parameters"].as_array_mut().expect("the operation has parameters");
    let param = params.iter_mut().find(|p| p["name"] == name).expect("the parameter exists");
    param["schema"] = schema;
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(c) = openapi.components.as_mut() {
            c.add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("crk_<64 hex>").build()),
            );
        }
    }
}

/// The answers any route may give because of `crate::protect`: 429 on every
/// route that takes a key (per-key rate limit), 408 on every route that takes
/// a body (stalled or slow body).
struct ProtectionResponses;

impl Modify for ProtectionResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{content::ContentBuilder, Ref, ResponseBuilder};
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content("application/json", ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build())
                .build()
        };
        for item in openapi.paths.paths.values_mut() {
            for (op, has_body) in [(&mut item.get, false), (&mut item.delete, false), (&mut item.post, true), (&mut item.put, true), (&mut item.patch, true)] {
                let Some(op) = op.as_mut() else { continue };
                if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
                    op.responses.responses.entry("429".into()).or_insert_with(|| error("Too many requests for this API key, too many unknown keys from this address, or past a per-key quota (open sockets, uploads, queued jobs); see Retry-After").into());
                }
                if has_body {
                    op.responses.responses.entry("408".into()).or_insert_with(|| error("The request body stalled or took too long").into());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_document_has_every_registered_route_with_the_protection_answers() {
        let doc = super::document();
        let ops: Vec<(&String, &utoipa::openapi::path::Operation)> = doc
            .paths
            .paths
            .iter()
            .flat_map(|(path, item)| [&item.get, &item.post, &item.put, &item.patch, &item.delete].into_iter().flatten().map(move |op| (path, op)))
            .collect();
        assert_eq!(ops.len(), 34, "{:?}", ops.iter().map(|(p, _)| p).collect::<Vec<_>>());
        for (path, op) in &ops {
            if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
                assert!(op.responses.responses.contains_key("429"), "{path}");
            }
        }
        assert!(doc.paths.paths["/api/v1/jobs/{id}"].delete.is_some() && doc.paths.paths["/api/v1/jobs/{id}"].get.is_some());
        let monitor = &doc.paths.paths["/api/v1/monitors/{id}"];
        assert!(monitor.get.is_some() && monitor.patch.is_some() && monitor.delete.is_some());
    }

    #[test]
    fn the_served_document_states_each_kinds_parameters_under_the_limits() {
        let limits = crunch_domain::Limits { factorize_max_digits: 40, scrape_max_pages: 3, ..Default::default() };
        let doc = super::served(&limits, 30);
        let kinds = doc["components"]["schemas"]["SubmitRequest"]["oneOf"].as_array().expect("a oneOf of kinds");
        let names: Vec<&str> = kinds.iter().filter_map(|k| k["properties"]["kind"]["enum"][0].as_str()).collect();
        assert_eq!(names, ["factorize", "primes", "nth_prime", "check_url", "scrape_hotels"]);
        let n = &kinds[0]["properties"]["params"]["properties"]["n"]["oneOf"][0];
        assert_eq!((n["pattern"].as_str(), n["maxLength"].as_u64()), (Some("^0*[1-9][0-9]{0,39}(?!\\n)$"), Some(104)));
        assert_eq!(kinds[4]["properties"]["params"]["properties"]["pages"]["maximum"], 3);
        assert!(kinds.iter().all(|k| k["additionalProperties"] == false && k["properties"]["params"]["additionalProperties"] == false));
        let status = doc["paths"]["/api/v1/jobs"]["get"]["parameters"].as_array().and_then(|p| p.iter().find(|p| p["name"] == "status")).expect("status");
        assert_eq!(status["schema"]["enum"][0], "");
        assert_eq!(doc["components"]["schemas"]["SelectRequest"]["properties"]["hotel_ids"]["items"]["minimum"], 1);
        let monitor = &doc["components"]["schemas"]["CreateMonitor"];
        assert_eq!((monitor["properties"]["interval_s"]["minimum"].as_u64(), monitor["additionalProperties"].as_bool()), (Some(30), Some(false)));
        assert_eq!(monitor["required"], serde_json::json!(["url", "interval_s"]));
    }
}
