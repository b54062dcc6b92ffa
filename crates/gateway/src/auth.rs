//! API keys: `Authorization: Bearer <key>`. Keys are random 256-bit tokens
//! (`crk_` + 64 hex digits); only their SHA-256 is stored.

use std::future::Future;
use std::pin::Pin;

use actix_web::{web, FromRequest, HttpRequest};
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

pub const KEY_PREFIX: &str = "crk_";

/// A new random key.
pub fn generate_key() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("{KEY_PREFIX}{}", hex::encode(bytes))
}

pub fn hash_key(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

/// The authenticated caller: the id of the key that made the request.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub key_id: Uuid,
}

/// The bearer token of a request: the `Authorization` header, or (for
/// browsers opening a WebSocket, which cannot set headers) `?access_token=`.
fn token_of(req: &HttpRequest) -> Option<String> {
    if let Some(h) = req.headers().get(actix_web::http::header::AUTHORIZATION) {
        let v = h.to_str().ok()?;
        let (scheme, token) = v.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned());
    }
    if req.path().ends_with("/events") {
        return web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
            .ok()
            .and_then(|q| q.get("access_token").cloned());
    }
    None
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let token = token_of(req);
        let client = req.peer_addr().map(|a| a.ip());
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let token = token.filter(|t| well_formed(t)).ok_or(ApiError::Unauthorized)?;
            let state = state.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("state missing")))?;
            let hash = hash_key(&token);
            let key_id = match state.keys.get(&hash) {
                Cached::Active(id) => id,
                Cached::NotAKey => return Err(ApiError::Unauthorized),
                // Looked up again (it may have been revoked), but never
                // refused for its address: a flood of made-up keys from the
                // same address (or the same proxy) cannot lock out clients
                // whose keys were working.
                Cached::Seen => lookup(&state, hash, None).await?,
                Cached::Unseen => lookup(&state, hash, client).await?,
            };
            let caller = Caller { key_id };
            state.rate_limits.check(caller.key_id).map_err(|retry_after_secs| ApiError::RateLimited { retry_after_secs })?;
            Ok(caller)
        })
    }
}

/// `crk_` and 64 lowercase hex digits, as `generate_key` makes them:
/// anything else is refused without a lookup.
fn well_formed(token: &str) -> bool {
    token.strip_prefix(KEY_PREFIX).is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

/// Looks a key up in the database and remembers the answer, found or not.
/// Each lookup of a key not seen active recently costs the client address
/// one token of its allowance
/// (`CRUNCH_KEY_LOOKUPS_PER_SEC`), and at most half the pool's connections
/// serve lookups at once: a flood of made-up keys gets 429s and cannot take
/// the connections that requests with known keys need.
async fn lookup(state: &AppState, hash: Vec<u8>, client: Option<std::net::IpAddr>) -> Result<Uuid, ApiError> {
    if let Some(ip) = client {
        state.key_lookup_limits.check(ip).map_err(|retry_after_secs| ApiError::Quota {
            code: "too_many_key_lookups",
            message: format!("too many unknown API keys from this address; try again in {retry_after_secs} s"),
            retry_after_secs,
        })?;
    }
    let _permit = tokio::time::timeout(state.key_lookup_wait, state.key_lookups.acquire())
        .await
        .map_err(|_| ApiError::Unavailable("the database"))?
        .map_err(|_| ApiError::Unavailable("the database"))?;
    let pool = state.pool.clone();
    let h = hash.clone();
    let row = web::block(move || {
        let mut conn = pool.get()?;
        crunch_store::keys::find_active_by_hash(&mut conn, &h)
    })
    .await??;
    let id = row.map(|r| r.id);
    state.keys.put(hash, id);
    id.ok_or(ApiError::Unauthorized)
}

/// What the cache knows of a key.
#[derive(Debug, PartialEq, Eq)]
pub enum Cached {
    /// Active when looked up less than `ttl` ago.
    Active(Uuid),
    /// Not a key when looked up less than `ttl` ago.
    NotAKey,
    /// Active when looked up longer ago, within [`KeyCache::SEEN`].
    Seen,
    /// Not looked up recently.
    Unseen,
}

/// Recently looked-up keys (SHA-256 -> key id, or not a key), so that a busy
/// client does not cost a database query per request, and a made-up key
/// sent again costs none. Answers are trusted for `ttl` (`CRUNCH_KEY_CACHE_SECS`,
/// 0 = no cache): a new key works at once (unless it was tried within `ttl`
/// before it existed), a revoked one stops within `ttl`. Active keys are
/// also remembered as seen for [`KeyCache::SEEN`], and kept apart from
/// unknown ones, so that a flood of made-up keys can only evict made-up keys.
pub struct KeyCache {
    ttl: std::time::Duration,
    active: std::sync::Mutex<std::collections::HashMap<Vec<u8>, (Uuid, std::time::Instant)>>,
    unknown: std::sync::Mutex<std::collections::HashMap<Vec<u8>, std::time::Instant>>,
}

impl KeyCache {
    /// Most keys remembered of each kind; past it that kind starts over.
    const CAPACITY: usize = 10_000;
    /// How long a key found active counts as seen.
    pub const SEEN: std::time::Duration = std::time::Duration::from_secs(600);

    pub fn new(ttl: std::time::Duration) -> Self {
        Self { ttl, active: Default::default(), unknown: Default::default() }
    }

    pub fn get(&self, hash: &[u8]) -> Cached {
        let active = self.active.lock().ok().and_then(|a| a.get(hash).copied());
        match active {
            Some((id, at)) if at.elapsed() < self.ttl => return Cached::Active(id),
            Some((_, at)) if at.elapsed() < Self::SEEN => return Cached::Seen,
            _ => {}
        }
        match self.unknown.lock().ok().and_then(|u| u.get(hash).copied()) {
            Some(at) if at.elapsed() < self.ttl => Cached::NotAKey,
            _ => Cached::Unseen,
        }
    }

    fn put(&self, hash: Vec<u8>, id: Option<Uuid>) {
        let now = std::time::Instant::now();
        match id {
            Some(id) => remember(&self.active, hash, (id, now)),
            None if !self.ttl.is_zero() => remember(&self.unknown, hash, now),
            None => {}
        }
    }
}

fn remember<V>(map: &std::sync::Mutex<std::collections::HashMap<Vec<u8>, V>>, hash: Vec<u8>, value: V) {
    if let Ok(mut entries) = map.lock() {
        if entries.len() >= KeyCache::CAPACITY {
            entries.clear();
        }
        entries.insert(hash, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_keys_of_the_generated_shape_are_looked_up() {
        assert!(well_formed(&generate_key()));
        for bad in ["crk_", "crk_abc", &format!("crk_{}", "A".repeat(64)), &format!("crk_{}", "0".repeat(65)), &format!("xrk_{}", "0".repeat(64))] {
            assert!(!well_formed(bad), "{bad}");
        }
    }

    #[test]
    fn the_cache_remembers_unknown_keys_apart_from_active_ones() {
        let cache = KeyCache::new(std::time::Duration::from_secs(60));
        let id = Uuid::new_v4();
        cache.put(b"good".to_vec(), Some(id));
        for i in 0..KeyCache::CAPACITY + 5 {
            cache.put(format!("made-up {i}").into_bytes(), None);
        }
        assert_eq!(cache.get(b"good"), Cached::Active(id), "made-up keys do not evict active ones");
        assert_eq!(cache.get(b"made-up 10003"), Cached::NotAKey);
        assert_eq!(cache.get(b"never seen"), Cached::Unseen);
        let short = KeyCache::new(std::time::Duration::ZERO);
        short.put(b"good".to_vec(), Some(id));
        short.put(b"bad".to_vec(), None);
        assert_eq!(short.get(b"good"), Cached::Seen, "an active key stays seen past the cache time");
        assert_eq!(short.get(b"bad"), Cached::Unseen);
    }
}
