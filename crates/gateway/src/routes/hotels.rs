//! Cities, hotels and selections. Selections are written through Kafka: the
//! gateway produces the change (acks=all, one request in flight, keyed by
//! owner) and answers 202; the persister stores it.


use actix_web::{delete, get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use crunch_domain::{SelectionMessage, SelectionOp};
use crunch_store::hotels::{City, Hotel, HotelOrder};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use utoipa_actix_web::service_config::ServiceConfig;

/// Most hotels one selection request may name.
pub const MAX_SELECTION: usize = 1000;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CityQuery {
    /// Part of a city's or country's name.
    pub q: Option<String>,
    /// At most this many (1..=500, default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CityPage {
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<City>,
    pub total: i64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HotelQuery {
    /// A city id (from `/api/v1/cities`).
    pub city: Option<i32>,
    /// Part of the hotel's name or description, any case.
    pub q: Option<String>,
    /// `name`, `rating`, `reviews` or `rank`, `-` first for descending
    /// (default `name`).
    #[param(pattern = "^(-?(name|rating|reviews|rank))?(?!\\n)$")]
    pub order: Option<String>,
    #[param(minimum = 0)]
    pub offset: Option<i64>,
    /// 1..=100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SelectionQuery {
    /// Part of the hotel's name or description, any case.
    pub q: Option<String>,
    /// `name`, `rating`, `reviews`, `rank` or `selected_at`, `-` first for
    /// descending (default `-selected_at`).
    #[param(pattern = "^(-?(name|rating|reviews|rank|selected_at))?(?!\\n)$")]
    pub order: Option<String>,
    #[param(minimum = 0)]
    pub offset: Option<i64>,
    /// 1..=100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HotelPage {
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<Hotel>,
    /// How many hotels match: exactly up to 10,000, else 10,000.
    pub total: i64,
    /// false when more than 10,000 match (`total` is then a lower bound).
    pub total_exact: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Selection {
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub hotel: Hotel,
    pub selected_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SelectionPage {
    pub items: Vec<Selection>,
    pub total: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SelectRequest {
    /// Hotel ids as `/api/v1/hotels` returns them (1..=1000 of them).
    #[schema(value_type = Vec<i64>)]
    pub hotel_ids: Vec<serde_json::Value>,
}

fn order(order: Option<&str>, of_selections: bool) -> Result<HotelOrder, ApiError> {
    match order.filter(|o| !o.is_empty()) {
        None => Ok(if of_selections { HotelOrder::SelectedAt(true) } else { HotelOrder::Name(false) }),
        Some(o) => HotelOrder::parse(o, of_selections).ok_or_else(|| {
            let extra = if of_selections { ", selected_at" } else { "" };
            ApiError::bad_request("invalid_query", format!("order must be one of name, rating, reviews, rank{extra}, optionally prefixed with -"))
        }),
    }
}

/// The catalogue of cities.
#[utoipa::path(get, path = "/api/v1/cities", tag = "hotels", params(CityQuery),
    responses((status = 200, description = "Cities by name", body = CityPage), (status = 400, description = "Invalid limit", body = crunch_domain::ErrorBody)))]
#[get("/api/v1/cities")]
pub async fn cities(state: web::Data<AppState>, q: web::Query<CityQuery>) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let limit = super::limit(q.limit, 100, 500)?;
    let pool = state.pool.clone();
    let (items, total) = web::block(move || {
        let mut conn = pool.get()?;
        crunch_store::hotels::cities(&mut conn, q.q.as_deref(), limit)
    })
    .await??;
    Ok(HttpResponse::Ok().json(CityPage { items, total }))
}

/// Hotels found by scrapes.
#[utoipa::path(get, path = "/api/v1/hotels", tag = "hotels", params(HotelQuery),
    responses((status = 200, description = "A page of hotels", body = HotelPage), (status = 400, description = "Invalid filter, order or page", body = crunch_domain::ErrorBody)))]
#[get("/api/v1/hotels")]
pub async fn hotels(state: web::Data<AppState>, q: web::Query<HotelQuery>) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let (offset, limit) = super::page(q.offset, q.limit, 20, 100)?;
    let order = order(q.order.as_deref(), false)?;
    let pool = state.pool.clone();
    let page = web::block(move || {
        let mut conn = pool.get()?;
        crunch_store::hotels::hotels(&mut conn, q.city, q.q.as_deref(), order, offset, limit)
    })
    .await??;
    Ok(HttpResponse::Ok().json(HotelPage { items: page.items, total: page.total, total_exact: page.total_exact }))
}

/// A hotel id in a path: a positive integer, else no hotel (404).
fn hotel_id(id: &str) -> Result<i64, ApiError> {
    id.parse().ok().filter(|i| *i > 0).ok_or(ApiError::NotFound("hotel"))
}

/// One hotel, with every field a scrape found (description, address,
/// amenities and the rest of its detail page).
#[utoipa::path(get, path = "/api/v1/hotels/{id}", tag = "hotels",
    params(("id" = i64, Path, description = "A hotel id as `/api/v1/hotels` returns it")),
    responses((status = 200, description = "The hotel", body = Object), (status = 404, description = "Not a hotel id", body = crunch_domain::ErrorBody)))]
#[get("/api/v1/hotels/{id}")]
pub async fn get_hotel(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = hotel_id(&id)?;
    let pool = state.pool.clone();
    let found = web::block(move || {
        let mut conn = pool.get()?;
        crunch_store::hotels::hotel(&mut conn, id)
    })
    .await??;
    Ok(HttpResponse::Ok().json(found.ok_or(ApiError::NotFound("hotel"))?))
}

/// One of the caller's selected hotels, with when it was selected.
#[utoipa::path(get, path = "/api/v1/selections/{hotel_id}", tag = "hotels",
    params(("hotel_id" = i64, Path, description = "A hotel id")),
    responses(
        (status = 200, description = "The selected hotel and `selected_at`", body = Selection),
        (status = 401, description = "Missing or invalid API key", body = crunch_domain::ErrorBody),
        (status = 404, description = "Not a hotel this key has selected", body = crunch_domain::ErrorBody),
    ), security(("bearer" = [])))]
#[get("/api/v1/selections/{hotel_id}")]
pub async fn get_selection(state: web::Data<AppState>, caller: Caller, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = hotel_id(&id)?;
    let pool = state.pool.clone();
    let found = web::block(move || {
        let mut conn = pool.get()?;
        crunch_store::hotels::selection(&mut conn, caller.key_id, id)
    })
    .await??;
    let (hotel, selected_at) = found.ok_or(ApiError::NotFound("selection"))?;
    Ok(HttpResponse::Ok().json(Selection { hotel, selected_at }))
}

async fn produce(state: &AppState, msg: &SelectionMessage) -> Result<(), ApiError> {
    state.selections.publish(msg).await.map_err(|_| ApiError::Unavailable("the Kafka broker"))
}

/// Select hotels ("save selected"): stored by the persister through Kafka.
#[utoipa::path(post, path = "/api/v1/selections", tag = "hotels", request_body = SelectRequest,
    responses(
        (status = 202, description = "Accepted: the persister stores it"),
        (status = 400, description = "No ids, too many or not positive", body = crunch_domain::ErrorBody),
        (status = 404, description = "Some ids are not hotels (`details.unknown_hotel_ids`); nothing was selected", body = crunch_domain::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = crunch_domain::ErrorBody),
        (status = 503, description = "Kafka or the database unavailable", body = crunch_domain::ErrorBody),
    ), security(("bearer" = [])))]
#[post("/api/v1/selections")]
pub async fn select(state: web::Data<AppState>, caller: Caller, body: web::Json<SelectRequest>) -> Result<HttpResponse, ApiError> {
    // Whole JSON numbers (`5` or `5.0`) from 1 to 2^53.
    let given = body.into_inner().hotel_ids;
    let mut ids: Vec<i64> = given.iter().filter_map(|v| crunch_domain::kinds::json_uint(v).filter(|&i| i > 0)).map(|i| i as i64).collect();
    if ids.is_empty() || ids.len() != given.len() || ids.len() > MAX_SELECTION {
        return Err(ApiError::BadRequest {
            code: "invalid_params",
            message: format!("hotel_ids must hold 1 to {MAX_SELECTION} positive hotel ids"),
            field: Some("hotel_ids".into()),
            details: None,
        });
    }
    ids.sort_unstable();
    ids.dedup();
    // Unknown ids are refused here, with nothing sent: accepted and then
    // dropped by the persister, they would be lost after a 202.
    let pool = state.pool.clone();
    let asked = ids.clone();
    let mut known = web::block(move || {
        let mut conn = pool.get()?;
        crunch_store::hotels::existing_hotel_ids(&mut conn, &asked)
    })
    .await??;
    known.sort_unstable();
    let unknown: Vec<i64> = ids.iter().copied().filter(|i| known.binary_search(i).is_err()).collect();
    if !unknown.is_empty() {
        return Err(ApiError::UnknownIds {
            message: format!("hotel_ids: {} of the ids are not hotels", unknown.len()),
            field: "hotel_ids",
            details: serde_json::json!({"unknown_hotel_ids": unknown}),
        });
    }
    let msg = SelectionMessage { owner_id: caller.key_id, op: SelectionOp::Add, hotel_ids: ids, at: Utc::now() };
    produce(&state, &msg).await?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({"accepted": msg.hotel_ids.len()})))
}

/// Unselect a hotel (through Kafka, like selecting).
#[utoipa::path(delete, path = "/api/v1/selections/{hotel_id}", tag = "hotels",
    params(("hotel_id" = i64, Path, description = "Hotel id")),
    responses(
        (status = 202, description = "Accepted: the persister removes it"),
        (status = 401, description = "Missing or invalid API key", body = crunch_domain::ErrorBody),
        (status = 404, description = "Not a hotel id", body = crunch_domain::ErrorBody),
        (status = 503, description = "Kafka unavailable", body = crunch_domain::ErrorBody),
    ), security(("bearer" = [])))]
#[delete("/api/v1/selections/{hotel_id}")]
pub async fn unselect(state: web::Data<AppState>, caller: Caller, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = hotel_id(&id)?;
    let msg = SelectionMessage { owner_id: caller.key_id, op: SelectionOp::Remove, hotel_ids: vec![id], at: Utc::now() };
    produce(&state, &msg).await?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({"accepted": 1})))
}

/// The caller's selected hotels.
#[utoipa::path(get, path = "/api/v1/selections", tag = "hotels", params(SelectionQuery),
    responses(
        (status = 200, description = "A page of selections with their hotels", body = SelectionPage),
        (status = 400, description = "Invalid order or page", body = crunch_domain::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = crunch_domain::ErrorBody),
    ), security(("bearer" = [])))]
#[get("/api/v1/selections")]
pub async fn selections(state: web::Data<AppState>, caller: Caller, q: web::Query<SelectionQuery>) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let (offset, limit) = super::page(q.offset, q.limit, 20, 100)?;
    let order = order(q.order.as_deref(), true)?;
    let pool = state.pool.clone();
    let (rows, total) = web::block(move || {
        let mut conn = pool.get()?;
        crunch_store::hotels::selections(&mut conn, caller.key_id, q.q.as_deref(), order, offset, limit)
    })
    .await??;
    let items = rows.into_iter().map(|(hotel, selected_at)| Selection { hotel, selected_at }).collect();
    Ok(HttpResponse::Ok().json(SelectionPage { items, total }))
}

/// Registers this module's routes with their OpenAPI operations.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(cities).service(hotels).service(get_hotel).service(select).service(unselect).service(selections).service(get_selection);
}
