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
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let token = token.filter(|t| t.starts_with(KEY_PREFIX) && t.len() <= 128).ok_or(ApiError::Unauthorized)?;
            let state = state.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("state missing")))?;
            let hash = hash_key(&token);
            let key_id = match state.keys.get(&hash) {
                Some(id) => id,
                None => {
                    let pool = state.pool.clone();
                    let h = hash.clone();
                    let row = web::block(move || {
                        let mut conn = pool.get()?;
                        crunch_store::keys::find_active_by_hash(&mut conn, &h)
                    })
                    .await??;
                    let id = row.map(|r| r.id).ok_or(ApiError::Unauthorized)?;
                    state.keys.put(hash, id);
                    id
                }
            };
            let caller = Caller { key_id };
            state.rate_limits.check(caller.key_id)?;
            Ok(caller)
        })
    }
}

/// Recently verified keys (SHA-256 -> key id), so that a busy client does not
/// cost a database query per request. Only keys found active are kept, for
/// `ttl`: a new key works at once, a revoked one stops within `ttl`
/// (`CRUNCH_KEY_CACHE_SECS`, 0 = no cache).
pub struct KeyCache {
    ttl: std::time::Duration,
    entries: std::sync::Mutex<std::collections::HashMap<Vec<u8>, (Uuid, std::time::Instant)>>,
}

impl KeyCache {
    /// Most keys remembered; past it the cache starts over.
    const CAPACITY: usize = 10_000;

    pub fn new(ttl: std::time::Duration) -> Self {
        Self { ttl, entries: Default::default() }
    }

    fn get(&self, hash: &[u8]) -> Option<Uuid> {
        let entries = self.entries.lock().ok()?;
        entries.get(hash).filter(|(_, at)| at.elapsed() < self.ttl).map(|(id, _)| *id)
    }

    fn put(&self, hash: Vec<u8>, id: Uuid) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= Self::CAPACITY {
                entries.clear();
            }
            entries.insert(hash, (id, std::time::Instant::now()));
        }
    }
}
