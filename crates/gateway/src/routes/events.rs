//! `/api/v1/events`: a WebSocket streaming the caller's job events as JSON.

use actix_web::{get, web, HttpRequest, HttpResponse};
use actix_ws::Message;
use futures::StreamExt;
use tokio::sync::broadcast::error::RecvError;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use utoipa_actix_web::service_config::ServiceConfig;

/// Live job events (WebSocket).
///
/// Upgrade to a WebSocket; the server sends one JSON text message per event of
/// the caller's jobs (`JobEvent`: `queued`, `started`, `progress`, `succeeded`,
/// `failed`, `cancelled`). Authenticate with the `Authorization` header or,
/// from a browser, `?access_token=<key>`.
#[utoipa::path(
    get, path = "/api/v1/events", tag = "events",
    params(("access_token" = Option<String>, Query, description = "API key, for clients that cannot set headers")),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol; messages are JobEvent JSON", body = crunch_domain::JobEvent),
        (status = 400, description = "Not a WebSocket upgrade request", body = crunch_domain::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = crunch_domain::ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/api/v1/events")]
pub async fn events(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let slot = state.sockets.take(caller.key_id).ok_or_else(|| ApiError::Quota {
        code: "too_many_sockets",
        message: format!("this API key already has {} event sockets open", state.sockets.max_per_key),
        retry_after_secs: 5,
    })?;
    let (response, mut session, mut incoming) = actix_ws::handle(&req, body)
        .map_err(|e| ApiError::bad_request("websocket_required", format!("this endpoint needs a WebSocket upgrade: {e}")))?;
    let mut rx = state.events.subscribe();
    let owner = caller.key_id;
    // A revoked key's sockets close within the key cache's time, as its
    // requests stop being accepted.
    let mut recheck = tokio::time::interval(state.key_recheck);
    recheck.tick().await;
    let pool = state.pool.clone();
    actix_web::rt::spawn(async move {
        let _slot = slot;
        loop {
            tokio::select! {
                _ = recheck.tick() => {
                    let pool = pool.clone();
                    let active = web::block(move || {
                        let mut conn = pool.get()?;
                        crunch_store::keys::is_active(&mut conn, owner)
                    })
                    .await;
                    if matches!(active, Ok(Ok(false))) {
                        let _ = session.close(Some(actix_ws::CloseReason { code: actix_ws::CloseCode::Policy, description: Some("the API key was revoked".into()) })).await;
                        return;
                    }
                }
                ev = rx.recv() => match ev {
                    Ok(ev) if ev.owner_id == owner => {
                        let text = serde_json::to_string(&ev).unwrap_or_default();
                        if session.text(text).await.is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(skipped = n, "a WebSocket client fell behind; events skipped");
                        let note = serde_json::json!({"type": "lagged", "skipped": n}).to_string();
                        if session.text(note).await.is_err() {
                            break;
                        }
                    }
                    Err(RecvError::Closed) => break,
                },
                msg = incoming.next() => match msg {
                    Some(Ok(Message::Ping(bytes))) => {
                        if session.pong(&bytes).await.is_err() {
                            break;
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => {}
                },
            }
        }
        let _ = session.close(None).await;
    });
    Ok(response)
}

/// Registers this module's routes with their OpenAPI operations.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(events);
}
