//! `scrape_hotels`: hotel listings of a city or a list page.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::check_url::CheckUrlParams;
use super::Params;
use crate::job::SpecError;
use crate::limits::Limits;

/// Parameters of a `scrape_hotels` job: a city of the site profile's
/// catalogue or a list page URL, how many list pages (30 hotels each), and
/// whether to fetch every hotel's detail page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrapeHotelsParams {
    city: Option<String>,
    start_url: Option<url::Url>,
    pages: u32,
    details: bool,
}

impl ScrapeHotelsParams {
    pub const MAX_CITY_LEN: usize = 100;

    /// The city to scrape (unless a list page is given): found in the site
    /// profile, the catalogue, or through the site's search.
    pub fn city(&self) -> Option<&str> {
        self.city.as_deref()
    }

    /// The first list page (unless a city is given).
    pub fn start_url(&self) -> Option<&url::Url> {
        self.start_url.as_ref()
    }

    /// List pages to read, 30 hotels each.
    pub fn pages(&self) -> u32 {
        self.pages
    }

    /// Whether every hotel's detail page is fetched.
    pub fn details(&self) -> bool {
        self.details
    }
}

impl Params for ScrapeHotelsParams {
    fn parse(params: &serde_json::Value, limits: &Limits) -> Result<Self, SpecError> {
        let obj = params
            .as_object()
            .ok_or_else(|| SpecError::param("city", "or start_url is required: params must be an object like {\"city\": \"Dubai\"}"))?;
        super::no_extra_fields(obj, &["city", "start_url", "pages", "details"], "city")?;
        let city = match obj.get("city") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(c)) if c.chars().count() > Self::MAX_CITY_LEN => {
                return Err(SpecError::param("city", format!("is longer than {} characters", Self::MAX_CITY_LEN)))
            }
            Some(serde_json::Value::String(c)) if c.trim().is_empty() => return Err(SpecError::param("city", "must not be blank")),
            Some(serde_json::Value::String(c)) => Some(c.trim()),
            Some(_) => return Err(SpecError::param("city", "must be a string")),
        };
        let start_url = match obj.get("start_url") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(u)) => Some(CheckUrlParams::parse_url(u, "start_url")?),
            Some(_) => return Err(SpecError::param("start_url", "must be a string")),
        };
        if city.is_some() == start_url.is_some() {
            return Err(SpecError::param("city", "or start_url is required, not both"));
        }
        let max = limits.scrape_max_pages;
        let pages = match obj.get("pages") {
            None | Some(serde_json::Value::Null) => 1,
            Some(v) => super::json_uint(v)
                .filter(|p| (1..=max as u64).contains(p))
                .ok_or_else(|| SpecError::param("pages", format!("must be an integer from 1 to {max}")))? as u32,
        };
        let details = match obj.get("details") {
            None | Some(serde_json::Value::Null) => true,
            Some(serde_json::Value::Bool(b)) => *b,
            Some(_) => return Err(SpecError::param("details", "must be true or false")),
        };
        Ok(Self { city: city.map(str::to_owned), start_url, pages, details })
    }

    fn schema(limits: &Limits) -> serde_json::Value {
        let text = |what: &str| serde_json::json!({"type": "string", "description": what});
        serde_json::json!({
            "type": "object",
            "description": "Exactly one of `city` and `start_url`",
            "additionalProperties": false,
            "properties": {
                "city": {"type": ["string", "null"], "maxLength": Self::MAX_CITY_LEN, "pattern": "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$", "description": "A city: the site profile's, one found before (GET /api/v1/cities), or any other, looked up through the site's search; not blank, no NUL"},
                "start_url": {"type": ["string", "null"], "minLength": 1, "maxLength": CheckUrlParams::MAX_URL_LEN, "format": "uri-reference", "description": "A list page of the site (http or https)"},
                "pages": {"type": ["integer", "null"], "minimum": 1, "maximum": limits.scrape_max_pages, "description": "List pages to read, 30 hotels each (default 1)"},
                "details": {"type": ["boolean", "null"], "description": "Fetch every hotel's detail page (default true)"},
            },
            "oneOf": [
                {"required": ["city"], "properties": {"city": text("the city"), "start_url": {"type": "null"}}},
                {"required": ["start_url"], "properties": {"start_url": text("the list page"), "city": {"type": "null"}}},
            ],
            "example": {"city": "Dubai", "pages": 1},
        })
    }

    fn canonical(&self) -> serde_json::Value {
        serde_json::json!({
            "city": self.city,
            "start_url": self.start_url.as_ref().map(|u| u.as_str()),
            "pages": self.pages,
            "details": self.details,
        })
    }
}

/// The result of a `scrape_hotels` job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ScrapeHotelsResult {
    /// The site's name (the profile's, or the list page's host).
    pub source: String,
    /// The first list page read.
    pub list_url: String,
    pub pages: u32,
    /// Hotels stored (new or updated).
    pub hotels: usize,
    pub hotel_ids: Vec<i64>,
    pub details_fetched: usize,
    /// Listings dropped because their id, name or numbers were not sane.
    pub invalid_listings: usize,
    /// Pages that could not be read.
    pub failures: Vec<PageFailure>,
    /// Pages robots.txt disallows.
    pub skipped_by_robots: usize,
    /// What the site's robots.txt said.
    pub robots: RobotsReport,
    /// The city scraped, when one was named.
    pub city: Option<ScrapedCity>,
    pub elapsed_ms: u64,
}

/// The city a scrape read, and how its list page was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ScrapedCity {
    /// The catalogue's id (`/api/v1/cities`), when the city is in it.
    pub id: Option<i32>,
    pub name: String,
    pub country: Option<String>,
    pub found_by: CityFoundBy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CityFoundBy {
    /// The site profile's own list.
    Profile,
    /// An earlier search of the site, kept in the catalogue.
    Catalogue,
    /// The site's typeahead search, now (the city is added to the catalogue).
    SiteSearch,
}

/// How a scrape read the site's robots.txt (RFC 9309, for the agent
/// `crunch`, else the `*` group).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RobotsReport {
    pub status: RobotsStatus,
    /// The `Crawl-delay` honoured between two requests to the site, in ms.
    pub crawl_delay_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RobotsStatus {
    /// Read, and its rules followed.
    Followed,
    /// Absent (a 4xx answer): every page is allowed.
    Absent,
    /// The worker is configured to ignore robots.txt (`CRUNCH_SCRAPE_ROBOTS=false`).
    Ignored,
}

/// A page of a scrape that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PageFailure {
    pub url: String,
    pub error: String,
}
