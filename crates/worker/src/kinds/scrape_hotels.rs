//! `scrape_hotels`: list pages of a hotel site (30 hotels each), then every
//! hotel's detail page, fetched concurrently (bounded, a minimum interval per
//! host, timeouts, retries with backoff, robots.txt honoured unless disabled)
//! through the same SSRF-guarded client as URL checks; HTML parsed with the
//! scraper crate on rayon; hotels upserted by (source, source id).
//!
//! The site profile (URL patterns and selectors) is `profiles/tripadvisor.json`
//! built in, or the file named by `CRUNCH_SCRAPE_PROFILE_FILE`; its base URL
//! can be overridden with `CRUNCH_SCRAPE_BASE_URL`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crunch_compute::Control;
use crunch_domain::{CityFoundBy, JobError, PageFailure, RobotsReport, RobotsStatus, ScrapeHotelsParams, ScrapeHotelsResult, ScrapedCity};
use crunch_store::hotels::NewHotel;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;

use crate::guarded_http::{request, IoConfig};
use super::{Kernel, Kind, Outcome};

pub const BUILT_IN_PROFILE: &str = include_str!("../../profiles/tripadvisor.json");

#[derive(Debug, Clone, Deserialize)]
pub struct Profile {
    pub name: String,
    pub base_url: String,
    pub hotels_per_page: u32,
    pub list_json_selector: String,
    pub list_json_attribute: String,
    pub list_fallback_selector: String,
    pub description_selector: String,
    pub description_attribute: String,
    pub stars_selector: String,
    /// Cities' list pages known in advance (name -> path on the site).
    pub cities: HashMap<String, String>,
    /// How the site's own search finds any other city.
    #[serde(default)]
    pub typeahead: Option<Typeahead>,
}

/// The site's typeahead search, as its pages call it: the request, and where
/// the answer keeps each place's name, region and hotel list page (JSON
/// pointers). `{query}` in `path` is replaced by the city, URL-encoded; in
/// the body's strings, by the city as a JSON string's content.
#[derive(Debug, Clone, Deserialize)]
pub struct Typeahead {
    /// `GET` or `POST`.
    pub method: String,
    pub path: String,
    /// The JSON body of a POST.
    #[serde(default)]
    pub body: Option<serde_json::Value>,
    /// The array of results in the answer.
    pub results: String,
    /// Within one result: the path of its hotel list page (results without
    /// one, such as query suggestions, are passed over), its name, and its
    /// region ("Lisbon District, Portugal": the last part is the country).
    pub hotels_url: String,
    pub name: String,
    #[serde(default)]
    pub region: Option<String>,
}

/// A place the site's search found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundPlace {
    pub name: String,
    pub country: String,
    pub list_path: String,
}

impl Typeahead {
    /// The request for `query`: its URL on `base` and its JSON body.
    fn request(&self, base: &url::Url, query: &str) -> Option<(url::Url, Option<Vec<u8>>)> {
        let encoded: String = url::form_urlencoded::byte_serialize(query.as_bytes()).collect();
        let url = base.join(&self.path.replace("{query}", &encoded)).ok()?;
        let body = self.body.as_ref().map(|b| serde_json::to_vec(&with_query(b, query)).unwrap_or_default());
        Some((url, body))
    }

    /// The places in an answer that have a hotel list page (as the site
    /// wrote it), the one named exactly `query` (any case) first, else in the
    /// site's order.
    fn places(&self, answer: &serde_json::Value, query: &str) -> Vec<FoundPlace> {
        let text = |v: &serde_json::Value, pointer: &str| v.pointer(pointer).and_then(|s| s.as_str()).map(|s| clip(s.trim().to_owned(), MAX_NAME_CHARS));
        let mut places: Vec<FoundPlace> = answer
            .pointer(&self.results)
            .and_then(|r| r.as_array())
            .map(|results| {
                results
                    .iter()
                    .filter_map(|r| {
                        let list_path = r.pointer(&self.hotels_url)?.as_str()?;
                        let list_path = list_path.to_owned();
                        let name = text(r, &self.name).filter(|n| !n.is_empty())?;
                        let region = self.region.as_deref().and_then(|p| text(r, p)).unwrap_or_default();
                        let country = region.rsplit(',').next().unwrap_or("").trim().to_owned();
                        Some(FoundPlace { name, country, list_path })
                    })
                    .collect()
            })
            .unwrap_or_default();
        places.sort_by_key(|p| !p.name.eq_ignore_ascii_case(query.trim()));
        places
    }
}

/// `template` with `{query}` in every string replaced by `query`.
fn with_query(template: &serde_json::Value, query: &str) -> serde_json::Value {
    use serde_json::Value;
    match template {
        Value::String(s) => Value::String(s.replace("{query}", query)),
        Value::Array(a) => Value::Array(a.iter().map(|v| with_query(v, query)).collect()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), with_query(v, query))).collect()),
        other => other.clone(),
    }
}

/// How scrapes behave (from the worker's configuration).
pub struct ScrapeConfig {
    pub profile: Profile,
    pub concurrency: usize,
    pub min_interval: Duration,
    pub retries: u32,
    pub timeout: Duration,
    pub robots: bool,
    /// The longest `Crawl-delay` a scrape honours; a site asking for more is
    /// not scraped (the job fails with `crawl_delay_too_long`).
    pub max_crawl_delay: Duration,
    /// Pages nested deeper than this are not parsed (see [`too_deep`]).
    pub max_html_depth: usize,
    /// Detail pages fetched or parsed at once by all the worker's scrapes
    /// (each up to the body cap): bounds the memory a hostile site can take.
    pub pages_in_flight: Arc<tokio::sync::Semaphore>,
}

/// Page `n` (1-based) of a list URL: `oa{30(n-1)}` becomes the third
/// dash-separated segment of the path (`/Hotels-g1-oa30-City-Hotels.html`).
pub fn page_url(list: &url::Url, n: u32, per_page: u32) -> url::Url {
    if n <= 1 {
        return list.clone();
    }
    let mut parts: Vec<String> = list.path().split('-').map(str::to_owned).collect();
    let at = parts.len().min(2);
    parts.insert(at, format!("oa{}", per_page * (n - 1)));
    let mut u = list.clone();
    u.set_path(&parts.join("-"));
    u
}

/// A hotel as the list page shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listed {
    pub source_id: String,
    pub name: String,
    pub url: String,
    pub rating: Option<f64>,
    pub reviews: Option<i32>,
}

/// What a detail page adds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Details {
    pub description: Option<String>,
    pub rating: Option<f64>,
    pub reviews: Option<i32>,
    pub rank: Option<i32>,
    pub rank_total: Option<i32>,
    pub stars: Option<f64>,
}

fn id_from_url(url: &str) -> Option<String> {
    // ".../Hotel_Review-g295424-d302600-Reviews-..." -> "302600"
    url.split('-').find_map(|seg| seg.strip_prefix('d').filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())).map(str::to_owned))
}

/// Hotels of a list page: the JSON in the profile's attribute, or the fallback anchors.
pub fn parse_list(html: &str, p: &Profile) -> Vec<Listed> {
    let doc = scraper::Html::parse_document(html);
    if let Ok(sel) = scraper::Selector::parse(&p.list_json_selector) {
        for el in doc.select(&sel) {
            let Some(raw) = el.value().attr(&p.list_json_attribute) else { continue };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(raw) else { continue };
            let hotels: Vec<Listed> = v["hotels"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|h| {
                            let id = match &h["id"] {
                                serde_json::Value::String(s) => s.clone(),
                                serde_json::Value::Number(n) => n.to_string(),
                                _ => return None,
                            };
                            Some(Listed {
                                source_id: id,
                                name: h["name"].as_str()?.trim().to_owned(),
                                url: h["detailUrl"].as_str().unwrap_or_default().to_owned(),
                                rating: h["bubbleRating"]["rating"].as_f64().or_else(|| h["bubbleRating"].as_f64()),
                                reviews: h["numReviews"].as_i64().or_else(|| h["bubbleRating"]["count"].as_i64()).and_then(|n| i32::try_from(n).ok()),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            if !hotels.is_empty() {
                return hotels;
            }
        }
    }
    let Ok(sel) = scraper::Selector::parse(&p.list_fallback_selector) else { return Vec::new() };
    let mut seen = std::collections::HashSet::new();
    doc.select(&sel)
        .filter_map(|a| {
            let href = a.value().attr("href")?.to_owned();
            let id = id_from_url(&href)?;
            let name = a.text().collect::<String>().trim().to_owned();
            (!name.is_empty() && seen.insert(id.clone())).then_some(Listed { source_id: id, name, url: href, rating: None, reviews: None })
        })
        .collect()
}

fn number_after<T: std::str::FromStr>(text: &str, key: &str) -> Option<T> {
    let start = text.find(key)? + key.len();
    let rest = &text[start..];
    let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// The first string under `key` in a JSON value, depth first.
fn find_string(v: &serde_json::Value, key: &str) -> Option<String> {
    match v {
        serde_json::Value::Object(m) => {
            if let Some(serde_json::Value::String(s)) = m.get(key) {
                return Some(s.clone());
            }
            m.values().find_map(|x| find_string(x, key))
        }
        serde_json::Value::Array(a) => a.iter().find_map(|x| find_string(x, key)),
        _ => None,
    }
}

/// Fields of a detail page; missing ones stay `None`.
pub fn parse_details(html: &str, p: &Profile) -> Details {
    let doc = scraper::Html::parse_document(html);
    let mut d = Details::default();
    if let Ok(sel) = scraper::Selector::parse(&p.description_selector) {
        d.description = doc.select(&sel).find_map(|el| {
            let raw = el.value().attr(&p.description_attribute)?;
            // The attribute is JSON: the first `locationDescription` string
            // at any depth; where the rest does not parse, the string after
            // the key is read on its own.
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(raw) {
                return find_string(&v, "locationDescription");
            }
            let start = raw.find("locationDescription\":\"")? + "locationDescription\":\"".len();
            let mut de = serde_json::Deserializer::from_str(&raw[start - 1..]).into_iter::<String>();
            de.next()?.ok()
        });
    }
    // The embedded summary, possibly with escaped quotes.
    let text = html.replace("\\\"", "\"");
    if let Some(at) = text.find("reviewSummary\":{") {
        let summary = &text[at..];
        d.rating = number_after(summary, "\"rating\":");
        d.reviews = number_after(summary, "\"count\":");
    }
    if let Some(at) = text.find("\"popIndexDetails\":{") {
        let pop = &text[at..];
        d.rank = number_after(pop, "\"popIndexRank\":");
        d.rank_total = number_after(pop, "\"popIndexTotal\":");
    }
    if let Ok(sel) = scraper::Selector::parse(&p.stars_selector) {
        d.stars = doc.select(&sel).find_map(|el| el.value().attr("aria-label")?.split_whitespace().next()?.parse().ok());
    }
    d
}

/// Runs a parser on rayon (never on the async runtime's threads).
async fn on_rayon<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    rayon::spawn(move || {
        let _ = tx.send(f());
    });
    rx.await.ok()
}

/// The product token a robots.txt names to address Crunch's scrapes.
pub const ROBOTS_AGENT: &str = "crunch";

/// The most of a robots.txt that is read; RFC 9309 asks for at least 500 KiB.
const ROBOTS_MAX_BYTES: usize = 512 * 1024;

/// A site's robots.txt as a scrape follows it (RFC 9309). Its rules are
/// matched by texting_robots: the `crunch` group, else `*`; `Allow` and
/// `Disallow` with `*` and `$`, the longest match winning and `Allow` on a tie.
enum Robots {
    Followed(texting_robots::Robot),
    Absent,
    Ignored,
}

impl Robots {
    /// Parses a robots.txt (its first [`ROBOTS_MAX_BYTES`]); one the parser
    /// refuses counts as absent, as RFC 9309 treats unparseable lines.
    fn parse(body: &[u8]) -> Self {
        let body = &body[..body.len().min(ROBOTS_MAX_BYTES)];
        texting_robots::Robot::new(ROBOTS_AGENT, body).map_or(Robots::Absent, Robots::Followed)
    }

    fn allowed(&self, u: &url::Url) -> bool {
        match self {
            Robots::Followed(r) => r.allowed(u.as_str()),
            Robots::Absent | Robots::Ignored => true,
        }
    }

    fn crawl_delay(&self) -> Option<Duration> {
        match self {
            Robots::Followed(r) => r.delay.filter(|d| d.is_finite() && *d > 0.0).map(|d| Duration::from_secs_f64(f64::from(d).min(1e9))),
            Robots::Absent | Robots::Ignored => None,
        }
    }

    fn report(&self) -> RobotsReport {
        let status = match self {
            Robots::Followed(_) => RobotsStatus::Followed,
            Robots::Absent => RobotsStatus::Absent,
            Robots::Ignored => RobotsStatus::Ignored,
        };
        RobotsReport { status, crawl_delay_ms: self.crawl_delay().map(|d| d.as_millis() as u64) }
    }
}

/// The site's robots.txt, fetched through the scrape's pacer. A 4xx answer
/// means there is none; a 5xx or a network failure (after the retries) means
/// the site cannot say, and RFC 9309 then asks a crawler to fetch nothing. A
/// site the SSRF guard refuses is not scraped at all (`blocked`).
async fn fetch_robots(list: &url::Url, io: &IoConfig, sc: &ScrapeConfig, pacer: &HostPacer) -> Result<Robots, JobError> {
    if !sc.robots {
        return Ok(Robots::Ignored);
    }
    let Ok(url) = list.join("/robots.txt") else { return Ok(Robots::Absent) };
    match get_with_retries(&url, io, sc, pacer).await {
        Ok(body) => Ok(on_rayon(move || Robots::parse(&body)).await.unwrap_or(Robots::Absent)),
        Err(PageError { status: Some(400..=499), .. }) => Ok(Robots::Absent),
        Err(PageError { kind: Some("blocked"), message, .. }) => Err(JobError::new("blocked", format!("the site cannot be scraped: {message}"))),
        Err(e) => Err(JobError::new(
            "robots_unreachable",
            format!("{url} could not be read ({}); RFC 9309 then asks a crawler to fetch nothing from the site; try again later", e.message),
        )),
    }
}

/// Spaces requests to one host by at least `min_interval` (the worker's, or
/// the site's `Crawl-delay` when longer).
struct HostPacer {
    next: tokio::sync::Mutex<Instant>,
    min_interval: Duration,
}

impl HostPacer {
    async fn wait(&self) {
        let mut next = self.next.lock().await;
        let now = Instant::now();
        if *next > now {
            tokio::time::sleep(*next - now).await;
        }
        *next = Instant::now().max(*next) + self.min_interval;
    }

    /// Spaces requests by at least `interval` from now on, the next one
    /// counted from the last.
    fn at_least(&mut self, interval: Duration) {
        if interval > self.min_interval {
            *self.next.get_mut() += interval - self.min_interval;
            self.min_interval = interval;
        }
    }
}

/// Why a page could not be read: the site's status when it answered, else
/// the client's failure kind (`blocked`, `timeout`, ...).
struct PageError {
    status: Option<u16>,
    kind: Option<&'static str>,
    message: String,
}

async fn get_with_retries(url: &url::Url, io: &IoConfig, sc: &ScrapeConfig, pacer: &HostPacer) -> Result<Vec<u8>, PageError> {
    send_with_retries(url, hyper::Method::GET, None, io, sc, pacer).await
}

/// One request, paced, retried with backoff on 5xx, 429, timeouts and
/// network failures; the body of a 2xx answer.
async fn send_with_retries(
    url: &url::Url,
    method: hyper::Method,
    body: Option<(&str, hyper::body::Bytes)>,
    io: &IoConfig,
    sc: &ScrapeConfig,
    pacer: &HostPacer,
) -> Result<Vec<u8>, PageError> {
    let mut attempt = 0;
    loop {
        pacer.wait().await;
        let (retryable, e) = match tokio::time::timeout(sc.timeout, request(url, method.clone(), body.clone(), io, true)).await {
            Ok(Ok(f)) if (200..300).contains(&f.status) => return Ok(f.body),
            Ok(Ok(f)) => (f.status >= 500 || f.status == 429, PageError { status: Some(f.status), kind: None, message: format!("HTTP {}", f.status) }),
            Ok(Err(e)) => (e.retryable(), PageError { status: None, kind: Some(e.kind), message: format!("{}: {}", e.kind, e.message) }),
            Err(_) => (true, PageError { status: None, kind: Some("timeout"), message: format!("timeout after {:?}", sc.timeout) }),
        };
        if !retryable || attempt >= sc.retries {
            return Err(e);
        }
        attempt += 1;
        tokio::time::sleep(Duration::from_millis(100 << attempt.min(5))).await;
    }
}

/// One page, unless the scrape was stopped.
async fn fetch_page(u: &url::Url, io: &IoConfig, sc: &ScrapeConfig, pacer: &HostPacer, ctl: &Control) -> Result<String, String> {
    if ctl.check().is_err() {
        return Err("stopped".to_owned());
    }
    let body = get_with_retries(u, io, sc, pacer).await.map_err(|e| e.message)?;
    // Valid UTF-8 becomes the page's text without a copy (pages are up to the body cap).
    let html = String::from_utf8(body).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    if too_deep(&html, sc.max_html_depth) {
        return Err(format!("nested deeper than {} elements; not parsed", sc.max_html_depth));
    }
    Ok(html)
}

/// Elements that never hold others (void), whose content is raw text, or
/// whose end tag is optional (the parser closes them itself when the next one
/// starts, so they do not nest by repetition).
const VOID: &[&[u8]] = &[b"area", b"base", b"br", b"col", b"embed", b"hr", b"img", b"input", b"link", b"meta", b"source", b"track", b"wbr"];
const RAW_TEXT: &[&[u8]] = &[b"script", b"style", b"textarea", b"title", b"xmp", b"noscript", b"iframe", b"noembed", b"noframes", b"plaintext"];
const SELF_CLOSING_END: &[&[u8]] = &[b"p", b"li", b"dt", b"dd", b"tr", b"td", b"th", b"option", b"optgroup", b"rb", b"rt", b"rp", b"html", b"head", b"body"];

/// Whether the element nesting of `html` goes past `limit` (start tags minus
/// end tags, a linear scan that stops early). html5ever, like the HTML
/// standard's tree builder, scans the stack of open elements for many start
/// tags: a page of a million nested `<div>`s costs it O(depth²), about an hour.
/// Browsers cap the depth (Blink at 512); we refuse such a page instead.
pub fn too_deep(html: &str, limit: usize) -> bool {
    let b = html.as_bytes();
    let lower = |s: &[u8]| s.to_ascii_lowercase();
    let find = |from: usize, needle: &[u8]| -> usize {
        b[from.min(b.len())..].windows(needle.len()).position(|w| w.eq_ignore_ascii_case(needle)).map_or(b.len(), |p| from + p + needle.len())
    };
    let (mut i, mut depth) = (0usize, 0usize);
    while let Some(off) = b[i..].iter().position(|&c| c == b'<') {
        i += off + 1;
        let end_tag = b.get(i) == Some(&b'/');
        match b.get(i) {
            Some(b'!') if b[i..].starts_with(b"!--") => i = find(i, b"-->"),
            Some(b'!' | b'?') => i = find(i, b">"),
            Some(c) if c.is_ascii_alphabetic() || (end_tag && b.get(i + 1).is_some_and(u8::is_ascii_alphabetic)) => {
                let start = if end_tag { i + 1 } else { i };
                let mut j = start;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'-') {
                    j += 1;
                }
                let name = lower(&b[start..j]);
                // The tag's end, skipping quoted attribute values.
                let mut quote = None;
                while j < b.len() {
                    match (quote, b[j]) {
                        (None, b'"' | b'\'') => quote = Some(b[j]),
                        (Some(q), c) if c == q => quote = None,
                        (None, b'>') => break,
                        _ => {}
                    }
                    j += 1;
                }
                let self_closed = j > 0 && b.get(j - 1) == Some(&b'/');
                i = j;
                let nests = !VOID.contains(&name.as_slice()) && !SELF_CLOSING_END.contains(&name.as_slice());
                if end_tag {
                    if nests {
                        depth = depth.saturating_sub(1);
                    }
                } else if RAW_TEXT.contains(&name.as_slice()) {
                    i = find(i, &[b"</".as_slice(), name.as_slice()].concat());
                } else if nests && !self_closed {
                    depth += 1;
                    if depth > limit {
                        return true;
                    }
                }
            }
            _ => {}
        }
        if i >= b.len() {
            break;
        }
    }
    false
}

/// What a stored hotel may carry: a listing whose id is not 1 to
/// [`MAX_ID_BYTES`] visible ASCII characters, or whose name has no visible
/// character, is dropped
/// (and counted); longer texts are cut; numbers out of their range, and
/// links off the list page's site, are left empty. A hostile page otherwise
/// writes ids the unique index cannot hold (about 2.7 kB), which fails the
/// whole scrape on every attempt, or megabytes per hotel.
const MAX_ID_BYTES: usize = 64;
const MAX_NAME_CHARS: usize = 300;
const MAX_DESCRIPTION_CHARS: usize = 20_000;
const MAX_URL_BYTES: usize = 2_000;

fn valid_listing(h: &Listed) -> bool {
    (1..=MAX_ID_BYTES).contains(&h.source_id.len()) && h.source_id.bytes().all(|b| b.is_ascii_graphic()) && h.name.chars().any(|c| !c.is_whitespace() && !c.is_control())
}

/// `s` without NUL characters and cut to `max` characters.
fn clip(s: String, max: usize) -> String {
    let s = without_nul(s);
    match s.char_indices().nth(max) {
        Some((at, _)) => s[..at].to_owned(),
        None => s,
    }
}

fn within(v: Option<f64>, lo: f64, hi: f64) -> Option<f64> {
    v.filter(|x| x.is_finite() && (lo..=hi).contains(x))
}

/// A page of the list page's site (same scheme, host and port), as an
/// absolute URL: detail pages are fetched, and links stored, only there.
fn on_site(list: &url::Url, href: &str) -> Option<url::Url> {
    let u = list.join(href).ok()?;
    (u.origin() == list.origin() && u.as_str().len() <= MAX_URL_BYTES).then_some(u)
}

/// Scraped text without NUL characters, which PostgreSQL's text cannot hold
/// (a site's `\u0000` would otherwise fail every attempt of the scrape).
fn without_nul(s: String) -> String {
    if s.contains('\0') {
        s.replace('\0', "")
    } else {
        s
    }
}

/// Which site hotels come from, part of their identity (hotels are unique
/// per source and source id): the profile's name for the profile's own site,
/// else the list page's host and port. A page on another host can then only
/// write hotels of its own, never rename or move the profile site's hotels
/// that other keys have selected.
fn site_source(list: &url::Url, profile_base: &url::Url, profile_name: &str) -> String {
    let host = list.host_str().unwrap_or_default();
    let port = list.port_or_known_default();
    if Some(host) == profile_base.host_str() && port == profile_base.port_or_known_default() {
        profile_name.to_owned()
    } else {
        match list.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_owned(),
        }
    }
}

/// The list page of the city `name` on the profile's site, and the city: a
/// list page found before (the catalogue), the profile's own, or one the
/// site's typeahead search finds now (then kept in the catalogue).
async fn find_city(
    name: &str,
    base: &url::Url,
    io: &IoConfig,
    sc: &ScrapeConfig,
    pacer: &HostPacer,
    robots: &Robots,
    pool: &crunch_store::PgPool,
) -> Result<(url::Url, ScrapedCity), Outcome> {
    let city = |c: crunch_store::hotels::City, found_by| ScrapedCity { id: Some(c.id), name: c.name, country: Some(c.country), found_by };
    let profile = sc.profile.name.clone();
    let wanted = name.to_owned();
    if let Some((c, path)) = with_conn(pool, move |conn| crunch_store::hotels::city_list_page(conn, &profile, &wanted)).await? {
        if let Some(list) = on_site(base, &path) {
            return Ok((list, city(c, CityFoundBy::Catalogue)));
        }
    }
    if let Some(path) = sc.profile.cities.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone()) {
        let list = base.join(&path).map_err(|e| Outcome::Failed(JobError::new("bad_profile", format!("the list page of '{name}': {e}"))))?;
        let wanted = name.to_owned();
        let found = match with_conn(pool, move |conn| crunch_store::hotels::city_named(conn, &wanted)).await? {
            Some(c) => city(c, CityFoundBy::Profile),
            None => ScrapedCity { id: None, name: name.to_owned(), country: None, found_by: CityFoundBy::Profile },
        };
        return Ok((list, found));
    }
    let unknown = |why: String| Outcome::Failed(JobError::new("unknown_city", why));
    let Some(search) = &sc.profile.typeahead else {
        let known: Vec<&String> = sc.profile.cities.keys().collect();
        return Err(unknown(format!("the {} profile has no list page for '{name}' and no site search; known: {known:?}; or give start_url", sc.profile.name)));
    };
    let Some((url, body)) = search.request(base, name) else {
        return Err(Outcome::Failed(JobError::new("bad_profile", "the typeahead path is not a URL on the site")));
    };
    if !robots.allowed(&url) {
        return Err(unknown(format!("'{name}' is not in the catalogue, and the site's robots.txt disallows its search ({})", url.path())));
    }
    let method = if search.method.eq_ignore_ascii_case("POST") { hyper::Method::POST } else { hyper::Method::GET };
    let answer = send_with_retries(&url, method, body.map(|b| ("application/json", hyper::body::Bytes::from(b))), io, sc, pacer)
        .await
        .map_err(|e| Outcome::Failed(JobError::new("city_lookup_failed", format!("the site's search for '{name}' failed: {}", e.message))))?;
    let answer: serde_json::Value = serde_json::from_slice(&answer)
        .map_err(|e| Outcome::Failed(JobError::new("city_lookup_failed", format!("the site's search for '{name}' answered something other than JSON: {e}"))))?;
    let Some((place, list)) = search.places(&answer, name).into_iter().find_map(|p| on_site(base, &p.list_path).map(|u| (p, u))) else {
        return Err(unknown(format!("the site's search found no city for '{name}'")));
    };
    let path = list[url::Position::BeforePath..].to_owned();
    let profile = sc.profile.name.clone();
    let c = with_conn(pool, move |conn| crunch_store::hotels::remember_city(conn, &place.name, &place.country, &profile, &path)).await?;
    Ok((list, city(c, CityFoundBy::SiteSearch)))
}

/// Runs `f` on a pooled connection, off the async runtime's threads; a
/// database failure retries the job.
async fn with_conn<T: Send + 'static>(
    pool: &crunch_store::PgPool,
    f: impl FnOnce(&mut crunch_store::PgConnection) -> Result<T, crunch_store::StoreError> + Send + 'static,
) -> Result<T, Outcome> {
    let pool = pool.clone();
    match tokio::task::spawn_blocking(move || f(&mut *pool.get()?)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Outcome::Retry(format!("the database: {e}"))),
        Err(e) => Err(Outcome::Retry(format!("the database: {e}"))),
    }
}

impl Kind for ScrapeHotelsParams {
    const KERNEL: Kernel<Self> = Kernel::Io {
        run: |p, ctl, shared| Box::pin(run(p, ctl, Arc::clone(&shared.scrape_io), Arc::clone(&shared.scrape), shared.pool.clone())),
        abortable: true,
    };
}

pub async fn run(p: ScrapeHotelsParams, ctl: Control, io: Arc<IoConfig>, sc: Arc<ScrapeConfig>, pool: crunch_store::PgPool) -> Outcome {
    let started = Instant::now();
    let base = match url::Url::parse(&sc.profile.base_url) {
        Ok(b) => b,
        Err(e) => return Outcome::Failed(JobError::new("bad_profile", format!("profile base URL: {e}"))),
    };
    // The site whose robots.txt rules: the list page's, or the profile's
    // (where a city's list page and the site's search are).
    let site = p.start_url().cloned().unwrap_or_else(|| base.clone());
    let mut pacer = HostPacer { next: tokio::sync::Mutex::new(Instant::now()), min_interval: sc.min_interval };
    let robots = match fetch_robots(&site, &io, &sc, &pacer).await {
        Ok(r) => r,
        Err(e) => return Outcome::Failed(e),
    };
    if let Some(delay) = robots.crawl_delay() {
        if delay > sc.max_crawl_delay {
            return Outcome::Failed(JobError::new(
                "crawl_delay_too_long",
                format!("the site's robots.txt asks for {delay:?} between requests; this worker honours at most {:?} (CRUNCH_SCRAPE_MAX_CRAWL_DELAY_MS)", sc.max_crawl_delay),
            ));
        }
        pacer.at_least(delay);
    }
    let (list, city) = match (p.start_url(), p.city()) {
        (Some(u), _) => (u.clone(), None),
        (None, Some(name)) => match find_city(name, &base, &io, &sc, &pacer, &robots, &pool).await {
            Ok((list, city)) => (list, Some(city)),
            Err(outcome) => return outcome,
        },
        (None, None) => return Outcome::Failed(JobError::new("invalid_params", "city or start_url is required")),
    };
    let allowed = |u: &url::Url| robots.allowed(u);
    let total_steps = p.pages() as f64 + if p.details() { p.pages() as f64 * sc.profile.hotels_per_page as f64 } else { 0.0 };
    let mut done_steps = 0.0;
    let mut listed: Vec<Listed> = Vec::new();
    let mut failures = Vec::new();
    let mut skipped = 0;
    // List pages concurrently (bounded), kept in page order.
    let page_urls: Vec<url::Url> = (1..=p.pages()).map(|n| page_url(&list, n, sc.profile.hotels_per_page)).collect();
    let (page_urls, blocked): (Vec<_>, Vec<_>) = page_urls.into_iter().partition(|u| allowed(u));
    skipped += blocked.len();
    let pages: Vec<(url::Url, Result<String, String>)> = futures::stream::iter(page_urls)
        .map(|u| {
            let (io, sc, pacer, ctl) = (&io, &sc, &pacer, &ctl);
            async move {
                let r = fetch_page(&u, io, sc, pacer, ctl).await;
                (u, r)
            }
        })
        .buffered(sc.concurrency.max(1))
        .inspect(|_| {
            done_steps += 1.0;
            ctl.progress(done_steps / total_steps);
        })
        .collect()
        .await;
    if let Err(stop) = ctl.check() {
        return super::stopped(stop, started.elapsed().as_millis() as u64, json!({"hotels_listed": 0}));
    }
    for (u, r) in pages {
        match r {
            Ok(html) => {
                let sc = Arc::clone(&sc);
                listed.extend(on_rayon(move || parse_list(&html, &sc.profile)).await.unwrap_or_default());
            }
            Err(error) => failures.push(PageFailure { url: u.as_str().to_owned(), error }),
        }
    }
    let mut seen = std::collections::HashSet::new();
    let found = listed.len();
    listed.retain(valid_listing);
    let invalid_listings = found - listed.len();
    listed.retain(|h| seen.insert(h.source_id.clone()));
    let mut details: HashMap<String, Details> = HashMap::new();
    if p.details() {
        let jobs: Vec<(String, url::Url)> = listed
            .iter()
            .filter_map(|h| Some((h.source_id.clone(), on_site(&list, &h.url)?)))
            .filter(|(_, u)| {
                let ok = allowed(u);
                if !ok {
                    skipped += 1;
                }
                ok
            })
            .collect();
        // Each page is parsed as soon as it arrives and only its details are
        // kept; pages held at once are bounded for the whole worker
        // (`ScrapeConfig::pages_in_flight`), however many scrapes run.
        let fetched: Vec<(String, String, Result<Details, String>)> = futures::stream::iter(jobs)
            .map(|(id, u)| {
                let (io, sc, pacer, ctl) = (&io, &sc, &pacer, &ctl);
                async move {
                    let Ok(_page) = sc.pages_in_flight.acquire().await else {
                        return (id, u.to_string(), Err("the worker is shutting down".into()));
                    };
                    let r = match fetch_page(&u, io, sc, pacer, ctl).await {
                        Ok(html) => {
                            let sc = Arc::clone(sc);
                            on_rayon(move || parse_details(&html, &sc.profile)).await.ok_or_else(|| "parsing the page failed".to_owned())
                        }
                        Err(e) => Err(e),
                    };
                    (id, u.to_string(), r)
                }
            })
            .buffer_unordered(sc.concurrency.max(1))
            .inspect(|_| {
                done_steps += 1.0;
                ctl.progress(done_steps / total_steps);
            })
            .collect()
            .await;
        if let Err(stop) = ctl.check() {
            return super::stopped(stop, started.elapsed().as_millis() as u64, json!({"hotels_listed": listed.len()}));
        }
        for (id, u, r) in fetched {
            match r {
                Ok(d) => {
                    details.insert(id, d);
                }
                Err(error) => failures.push(PageFailure { url: u, error }),
            }
        }
    }
    let city_id = city.as_ref().and_then(|c| c.id);
    let source = site_source(&list, &base, &sc.profile.name);
    let base_for_urls = list.clone();
    let rows: Vec<NewHotel> = listed
        .iter()
        .map(|h| {
            let d = details.get(&h.source_id).cloned().unwrap_or_default();
            NewHotel {
                source: source.clone(),
                source_id: h.source_id.clone(),
                city_id: None,
                name: clip(h.name.trim().to_owned(), MAX_NAME_CHARS),
                url: on_site(&base_for_urls, &h.url).map(|u| u.to_string()),
                description: d.description.map(|t| clip(t, MAX_DESCRIPTION_CHARS)),
                rating: within(d.rating, 0.0, 5.0).or(within(h.rating, 0.0, 5.0)),
                reviews: d.reviews.or(h.reviews).filter(|n| *n >= 0),
                rank: d.rank.filter(|n| *n >= 1),
                rank_total: d.rank_total.filter(|n| *n >= 1),
                stars: within(d.stars, 0.0, 5.0),
            }
        })
        .collect();
    let stored = with_conn(&pool, move |conn| {
        rows.into_iter()
            .map(|mut h| {
                h.city_id = city_id;
                crunch_store::hotels::upsert_hotel(conn, &h)
            })
            .collect::<Result<Vec<i64>, _>>()
    })
    .await;
    let ids = match stored {
        Ok(ids) => ids,
        Err(outcome) => return outcome,
    };
    super::succeeded(ScrapeHotelsResult {
        source,
        list_url: list.as_str().to_owned(),
        pages: p.pages(),
        hotels: ids.len(),
        hotel_ids: ids,
        details_fetched: details.len(),
        invalid_listings,
        failures,
        skipped_by_robots: skipped,
        robots: robots.report(),
        city,
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> Profile {
        serde_json::from_str(BUILT_IN_PROFILE).expect("the built-in profile parses")
    }

    #[test]
    fn the_description_is_read_from_the_attributes_json_however_it_is_spaced() {
        for attr in [r#"{"locationDescription":"Near the Seine"}"#, r#"{ "x": [1], "locationDescription" : "Near the Seine" }"#, r#"{"a":{"locationDescription":"Near the Seine"}}"#] {
            let html = format!("<div data-ssrev-handlers='{attr}'></div>");
            assert_eq!(parse_details(&html, &profile()).description.as_deref(), Some("Near the Seine"), "{attr}");
        }
    }

    #[test]
    fn hotels_belong_to_the_site_they_were_fetched_from() {
        let base = url::Url::parse("https://www.tripadvisor.com").expect("url");
        let at = |u: &str| site_source(&url::Url::parse(u).expect("url"), &base, "tripadvisor");
        assert_eq!(at("https://www.tripadvisor.com/Hotels-g1-X-Hotels.html"), "tripadvisor");
        assert_eq!(at("https://www.tripadvisor.com:443/Hotels-g1-X-Hotels.html"), "tripadvisor");
        assert_eq!(at("http://www.tripadvisor.com/Hotels-g1-X-Hotels.html"), "www.tripadvisor.com");
        assert_eq!(at("https://evil.example/Hotels-g1-X-Hotels.html"), "evil.example");
        assert_eq!(at("https://evil.example:8443/x"), "evil.example:8443");
        assert_eq!(without_nul("a\0b".into()), "ab");
    }

    #[test]
    fn listings_and_fields_outside_their_limits_are_dropped_or_cut() {
        let listed = |id: &str, name: &str| Listed { source_id: id.into(), name: name.into(), ..Default::default() };
        assert!(valid_listing(&listed("302600", "Hotel")));
        assert!(!valid_listing(&listed("", "Hotel")));
        assert!(!valid_listing(&listed(&"9".repeat(65), "Hotel")));
        assert!(!valid_listing(&listed("30 26", "Hotel")));
        assert!(!valid_listing(&listed("é", "Hotel")));
        assert!(!valid_listing(&listed("1", "  ")));
        assert!(!valid_listing(&listed("1", " \0\u{7} ")));
        assert_eq!(clip("é\0é".repeat(200), 3), "ééé");
        assert_eq!(within(Some(f64::NAN), 0.0, 5.0), None);
        assert_eq!(within(Some(5.5), 0.0, 5.0), None);
        assert_eq!(within(Some(4.5), 0.0, 5.0), Some(4.5));
        let list = url::Url::parse("http://127.0.0.1:8080/Hotels-g1-X-Hotels.html").expect("url");
        assert_eq!(on_site(&list, "/Hotel_Review-g1-d2.html").map(|u| u.to_string()), Some("http://127.0.0.1:8080/Hotel_Review-g1-d2.html".into()));
        for off in ["http://169.254.169.254/latest", "//evil.example/x", "https://127.0.0.1:8080/x", "http://127.0.0.1:8081/x", "javascript:alert(1)"] {
            assert_eq!(on_site(&list, off), None, "{off}");
        }
        assert_eq!(on_site(&list, &format!("/{}", "a".repeat(3000))), None);
    }

    #[test]
    fn page_n_inserts_the_offset_as_the_third_segment() {
        let u = url::Url::parse("https://x.test/Hotels-g295424-Dubai-Hotels.html").expect("url");
        assert_eq!(page_url(&u, 1, 30).path(), "/Hotels-g295424-Dubai-Hotels.html");
        assert_eq!(page_url(&u, 3, 30).path(), "/Hotels-g295424-oa60-Dubai-Hotels.html");
    }

    #[test]
    fn list_pages_parse_the_json_or_the_fallback_anchors() {
        let html = r#"<div data-hotels-data='{"hotels":[{"id":"11","name":"A &amp; B","detailUrl":"/Hotel_Review-g1-d11-Reviews-A.html","bubbleRating":{"rating":4.5},"numReviews":120}]}'></div>"#;
        let got = parse_list(html, &profile());
        assert_eq!(got, vec![Listed { source_id: "11".into(), name: "A & B".into(), url: "/Hotel_Review-g1-d11-Reviews-A.html".into(), rating: Some(4.5), reviews: Some(120) }]);
        let html = r#"<div data-automation="hotel-card"><a href="/Hotel_Review-g1-d22-Reviews-C.html">C Hotel</a></div><p><b>broken"#;
        let got = parse_list(html, &profile());
        assert_eq!(got[0].source_id, "22");
        assert_eq!(got[0].name, "C Hotel");
    }

    #[test]
    fn detail_pages_parse_description_summary_rank_and_stars() {
        let html = r#"<div data-ssrev-handlers='{"x":1,"locationDescription":"Sea view \"and\" pool","y":2}'></div>
            <script>window.__S = "{\"reviewSummary\":{\"rating\":4.5,\"count\":1234},\"popIndexDetails\":{\"popIndexRank\":7,\"popIndexTotal\":650}}"</script>
            <svg aria-label="5.0 of 5 bubbles"></svg>"#;
        let d = parse_details(html, &profile());
        assert_eq!(d.description.as_deref(), Some("Sea view \"and\" pool"));
        assert_eq!((d.rating, d.reviews, d.rank, d.rank_total, d.stars), (Some(4.5), Some(1234), Some(7), Some(650), Some(5.0)));
        assert_eq!(parse_details("<html><p>nothing", &profile()), Details::default());
    }

    #[test]
    fn nesting_depth_is_estimated_without_parsing() {
        let deep = |n: usize, tag: &str| format!("<html><body>{}x", format!("<{tag}>").repeat(n));
        assert!(too_deep(&deep(1_000_000, "div"), 512));
        assert!(!too_deep(&deep(500, "div"), 512));
        // Closed, void, self-closed and optional-end elements do not add up.
        assert!(!too_deep(&"<div><span>a</span><br><img src='>'><p>x<li>y</div>".repeat(10_000), 8));
        assert!(!too_deep(&"<p>para".repeat(10_000), 8));
        assert!(!too_deep(&"<svg><path d='M0'/></svg>".repeat(10_000), 8));
        // Script and comment contents are not markup.
        assert!(!too_deep(&format!("<script>{}</script><!-- {} -->", "<div>".repeat(1000), "<div>".repeat(1000)), 8));
        assert!(too_deep(&"<DIV class=\"a>b\">".repeat(20), 8));
    }

    #[test]
    fn the_typeahead_request_and_answer_follow_the_profile() {
        let t = profile().typeahead.expect("the built-in profile has a typeahead");
        let base = url::Url::parse("https://x.test").expect("url");
        let (url, body) = t.request(&base, "Lis\"bon").expect("a request");
        assert_eq!(url.as_str(), "https://x.test/data/graphql/ids");
        let body: serde_json::Value = serde_json::from_slice(&body.expect("a POST body")).expect("json");
        assert_eq!(body.pointer("/0/variables/request/query"), Some(&json!("Lis\"bon")), "the query is a JSON string's content");
        let answer = json!([{"data": {"Typeahead_autocomplete": {"results": [
            {"text": "lisbon hotels"},
            {"details": {"localizedName": "Lisbon Airport", "HOTELS_URL": "/Hotels-g2-x.html"}},
            {"details": {"localizedName": "Lisbon", "localizedAdditionalNames": {"longOnlyHierarchy": "Lisbon District, Portugal"}, "HOTELS_URL": "/Hotels-g1-Lisbon-Hotels.html"}},
        ]}}}]);
        let places = t.places(&answer, " LISBON ");
        let lisbon = FoundPlace { name: "Lisbon".into(), country: "Portugal".into(), list_path: "/Hotels-g1-Lisbon-Hotels.html".into() };
        assert_eq!(places.first(), Some(&lisbon), "the exact name first");
        assert_eq!((places.len(), places[1].country.as_str()), (2, ""));
        assert!(t.places(&json!({"x": 1}), "a").is_empty());
    }

    #[test]
    fn robots_txt_groups_wildcards_allow_and_crawl_delay() {
        let r = Robots::parse(
            b"User-agent: *\nDisallow: /\n\nUser-agent: Crunch\nDisallow: /*-d10*-Reviews-\nAllow: /Hotel_Review-g1-d1012-\nDisallow: /*.pdf$\nCrawl-delay: 1.5\n",
        );
        let allowed = |path: &str| r.allowed(&url::Url::parse(&format!("http://x.test{path}")).expect("url"));
        assert!(allowed("/Hotels-g1-Testville-Hotels.html"), "our group, not *");
        assert!(!allowed("/Hotel_Review-g1-d1003-Reviews-H01003.html"));
        assert!(allowed("/Hotel_Review-g1-d1012-Reviews-H01012.html"), "the longer Allow wins");
        assert!(allowed("/Hotel_Review-g1-d2003-Reviews-H02003.html"));
        assert!(!allowed("/a.pdf") && allowed("/a.pdf?x=1"), "$ anchors the end");
        assert_eq!(r.report(), RobotsReport { status: RobotsStatus::Followed, crawl_delay_ms: Some(1500) });
        // Only the * group: it applies; an empty file allows everything.
        let star = Robots::parse(b"User-agent: Googlebot\nDisallow: /g\n\nUser-agent: *\nDisallow: /Hotel_Review-g1-d99\nDisallow:\n");
        assert!(!star.allowed(&url::Url::parse("http://x.test/Hotel_Review-g1-d99-x").expect("url")));
        assert!(star.allowed(&url::Url::parse("http://x.test/g").expect("url")));
        assert!(Robots::parse(b"").allowed(&url::Url::parse("http://x.test/any").expect("url")));
        assert_eq!(Robots::parse(b"Crawl-delay: -3\nCrawl-delay: NaN").crawl_delay(), None);
    }
}
