//! The dashboard: one page at `/` whose assets are compiled into the binary
//! (no CDN), and `/api/v1/ui-config`, what the page needs to know about this
//! deployment (limits for its client-side checks, optional links, demo traffic).

use actix_web::http::header;
use actix_web::{get, web, HttpResponse};
use crunch_domain::{CheckUrlParams, JobKind, Limits};
use serde::Serialize;
use utoipa::ToSchema;

use crate::demo::DemoInfo;
use crate::error::ApiError;
use utoipa_actix_web::service_config::ServiceConfig;

/// Content-Security-Policy of the page and its assets: scripts only from this
/// origin (no inline script, no eval), no plugins, no framing.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const INDEX: &str = include_str!("../../assets/index.html");
const ASSETS: &[Asset] = &[
    Asset { name: "app.js", content_type: "text/javascript; charset=utf-8", body: include_str!("../../assets/app.js") },
    Asset { name: "app.css", content_type: "text/css; charset=utf-8", body: include_str!("../../assets/app.css") },
];

fn page(content_type: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("Content-Security-Policy", CSP))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}

/// The dashboard page.
pub async fn index() -> HttpResponse {
    page("text/html; charset=utf-8", INDEX)
}

/// The dashboard's script and style sheet.
#[get("/assets/{name}")]
pub async fn asset(name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let asset = ASSETS.iter().find(|a| a.name == name.as_str()).ok_or(ApiError::NotFound("asset"))?;
    Ok(page(asset.content_type, asset.body))
}

/// What the dashboard needs to know about this deployment.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UiConfig {
    /// The job kinds this gateway accepts.
    pub kinds: Vec<&'static str>,
    pub limits: UiLimits,
    /// Adminer's address, when the deployment gives one (`CRUNCH_ADMINER_URL`).
    pub adminer_url: Option<String>,
    pub demo: DemoInfo,
}

/// The limits the API enforces, mirrored by the page's client-side checks.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UiLimits {
    pub factorize_max_digits: usize,
    pub primes_list_max_width: String,
    pub primes_count_max_width: String,
    pub scrape_max_pages: u32,
    pub url_max_length: usize,
    pub url_check_max_retries: u32,
    pub url_check_timeout_ms_min: u64,
    pub url_check_timeout_ms_max: u64,
    /// Largest gene-file upload, in bytes.
    pub genes_max_upload_bytes: u64,
}

impl UiConfig {
    pub fn new(limits: &Limits, genes_max_upload_bytes: u64, adminer_url: Option<String>, demo: DemoInfo) -> Self {
        Self {
            kinds: JobKind::names(),
            limits: UiLimits {
                factorize_max_digits: limits.factorize_max_digits,
                primes_list_max_width: limits.primes_list_max_width.to_string(),
                primes_count_max_width: limits.primes_count_max_width.to_string(),
                scrape_max_pages: limits.scrape_max_pages,
                url_max_length: CheckUrlParams::MAX_URL_LEN,
                url_check_max_retries: CheckUrlParams::MAX_RETRIES,
                url_check_timeout_ms_min: *CheckUrlParams::TIMEOUT_MS.start(),
                url_check_timeout_ms_max: *CheckUrlParams::TIMEOUT_MS.end(),
                genes_max_upload_bytes,
            },
            adminer_url: adminer_url.filter(|u| u.starts_with("http://") || u.starts_with("https://")),
            demo,
        }
    }
}

/// Dashboard settings: limits, links, demo traffic (no key needed).
///
/// Widths are decimal strings (they may exceed 2^53).
#[utoipa::path(
    get, path = "/api/v1/ui-config", tag = "dashboard",
    responses((status = 200, description = "The deployment's dashboard settings", body = UiConfig))
)]
#[get("/api/v1/ui-config")]
pub async fn ui_config(cfg: web::Data<UiConfig>) -> HttpResponse {
    HttpResponse::Ok().json(cfg.get_ref())
}

/// Registers the page, its assets and its settings (only the settings are
/// part of the API document).
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(ui_config).map(|c| c.service(asset).route("/", actix_web::web::get().to(index)));
}
