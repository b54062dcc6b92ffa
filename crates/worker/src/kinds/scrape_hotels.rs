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
use crunch_domain::{CheckMethod, JobError, PageFailure, ScrapeHotelsParams, ScrapeHotelsResult};
use crunch_store::hotels::NewHotel;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;

use crate::guarded_http::{fetch, IoConfig};
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
    pub cities: HashMap<String, String>,
}

/// How scrapes behave (from the worker's configuration).
pub struct ScrapeConfig {
    pub profile: Profile,
    pub concurrency: usize,
    pub min_interval: Duration,
    pub retries: u32,
    pub timeout: Duration,
    pub robots: bool,
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

/// Disallowed path prefixes for `User-agent: *` in a robots.txt.
fn robots_disallowed(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut applies = false;
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some((k, v)) = line.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            match k.as_str() {
                "user-agent" => applies = v == "*",
                "disallow" if applies && !v.is_empty() => out.push(v.to_owned()),
                _ => {}
            }
        }
    }
    out
}

/// Spaces requests to one host by at least `min_interval`.
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
}

async fn get_with_retries(url: &url::Url, io: &IoConfig, sc: &ScrapeConfig, pacer: &HostPacer) -> Result<String, String> {
    let mut attempt = 0;
    loop {
        pacer.wait().await;
        let res: Result<(), (bool, String)> = match tokio::time::timeout(sc.timeout, fetch(url, CheckMethod::Get, io, true)).await {
            Ok(Ok(f)) if (200..300).contains(&f.status) => return Ok(String::from_utf8_lossy(&f.body).into_owned()),
            Ok(Ok(f)) if f.status >= 500 || f.status == 429 => Err((true, format!("HTTP {}", f.status))),
            Ok(Ok(f)) => Err((false, format!("HTTP {}", f.status))),
            Ok(Err(e)) => Err((e.retryable(), format!("{}: {}", e.kind, e.message))),
            Err(_) => Err((true, format!("timeout after {:?}", sc.timeout))),
        };
        let Err((retryable, why)) = res else { unreachable!() };
        if !retryable || attempt >= sc.retries {
            return Err(why);
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
    let html = get_with_retries(u, io, sc, pacer).await?;
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
    let list = match (p.start_url(), p.city()) {
        (Some(u), _) => u.clone(),
        (None, Some(city)) => {
            let path = sc.profile.cities.iter().find(|(k, _)| k.eq_ignore_ascii_case(city)).map(|(_, v)| v.clone());
            match path.and_then(|path| base.join(&path).ok()) {
                Some(u) => u,
                None => {
                    let known: Vec<&String> = sc.profile.cities.keys().collect();
                    return Outcome::Failed(JobError::new("unknown_city", format!("the {} profile has no list page for '{city}'; known: {known:?}; or give start_url", sc.profile.name)));
                }
            }
        }
        (None, None) => return Outcome::Failed(JobError::new("invalid_params", "city or start_url is required")),
    };
    let pacer = HostPacer { next: tokio::sync::Mutex::new(Instant::now()), min_interval: sc.min_interval };
    let mut disallowed = Vec::new();
    if sc.robots {
        if let Ok(robots) = list.join("/robots.txt") {
            if let Ok(text) = get_with_retries(&robots, &io, &sc, &pacer).await {
                disallowed = robots_disallowed(&text);
            }
        }
    }
    let allowed = |u: &url::Url| !disallowed.iter().any(|d| u.path().starts_with(d.as_str()));
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
    let city = p.city().map(str::to_owned);
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
    let stored = tokio::task::spawn_blocking(move || -> Result<Vec<i64>, crunch_store::StoreError> {
        let mut conn = pool.get()?;
        let city_id = match &city {
            Some(c) => crunch_store::hotels::cities(&mut conn, Some(c), 50)?.0.into_iter().find(|x| x.name.eq_ignore_ascii_case(c)).map(|x| x.id),
            None => None,
        };
        rows.into_iter()
            .map(|mut h| {
                h.city_id = city_id;
                crunch_store::hotels::upsert_hotel(&mut conn, &h)
            })
            .collect()
    })
    .await;
    let ids = match stored {
        Ok(Ok(ids)) => ids,
        Ok(Err(e)) => return Outcome::Retry(format!("storing hotels failed: {e}")),
        Err(e) => return Outcome::Retry(format!("storing hotels failed: {e}")),
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
    fn robots_rules_for_every_agent() {
        let r = "User-agent: Googlebot\nDisallow: /g\n\nUser-agent: *\nDisallow: /Hotel_Review-g1-d99\nDisallow:\n";
        assert_eq!(robots_disallowed(r), vec!["/Hotel_Review-g1-d99".to_owned()]);
    }
}
