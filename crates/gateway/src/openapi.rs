//! The OpenAPI document: operations and schemas are declared next to their
//! handlers, and collected as the routes are registered ([`document`]).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;

use crate::routes::results;

#[derive(OpenApi)]
#[openapi(
    info(title = "Crunch API", description = "Submit CPU- and I/O-heavy jobs, follow them live, read their results. Every error is `{\"error\": {\"code\", \"message\"}}`."),
    // Only what no route's operation names: the rest is collected from the routes.
    components(schemas(crunch_domain::JobEvent, crunch_domain::EventType, crunch_domain::FactorizeResult, crunch_domain::FactorizePartial, results::PrimePage)),
    modifiers(&BearerAuth),
    tags((name = "jobs", description = "Job submission and results"), (name = "events", description = "Live job events"), (name = "url-checks", description = "URL-check history"), (name = "hotels", description = "Cities, hotels and selections"),
         (name = "operations", description = "Health, readiness and metrics"), (name = "dashboard", description = "Settings of the dashboard page"),
         (name = "gene-files", description = "Gene files: upload, parse, results"))
)]
pub struct ApiDoc;

/// The whole document: [`ApiDoc`] with the operation of every route that
/// `routes::configure` registers, and the answers `crate::protect` adds.
pub fn document() -> utoipa::openapi::OpenApi {
    let (_, mut doc) = actix_web::App::new().into_utoipa_app().openapi(ApiDoc::openapi()).configure(crate::routes::configure).split_for_parts();
    ProtectionResponses.modify(&mut doc);
    doc
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
            .flat_map(|(path, item)| [&item.get, &item.post, &item.put, &item.delete].into_iter().flatten().map(move |op| (path, op)))
            .collect();
        assert_eq!(ops.len(), 24, "{:?}", ops.iter().map(|(p, _)| p).collect::<Vec<_>>());
        for (path, op) in &ops {
            if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
                assert!(op.responses.responses.contains_key("429"), "{path}");
            }
        }
        assert!(doc.paths.paths["/api/v1/jobs/{id}"].delete.is_some() && doc.paths.paths["/api/v1/jobs/{id}"].get.is_some());
    }
}
