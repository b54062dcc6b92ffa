//! Cities, hotels and the hotels users selected.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use uuid::Uuid;

use crate::error::Result;
use crate::schema::{cities, hotels, selections};

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = cities, check_for_backend(diesel::pg::Pg))]
pub struct City {
    pub id: i32,
    pub name: String,
    pub country: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = hotels, check_for_backend(diesel::pg::Pg))]
pub struct Hotel {
    pub id: i64,
    pub source: String,
    pub source_id: String,
    pub city_id: Option<i32>,
    pub name: String,
    pub url: Option<String>,
    pub description: Option<String>,
    pub rating: Option<f64>,
    pub reviews: Option<i32>,
    pub rank: Option<i32>,
    pub rank_total: Option<i32>,
    pub stars: Option<f64>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = hotels)]
pub struct NewHotel {
    pub source: String,
    pub source_id: String,
    pub city_id: Option<i32>,
    pub name: String,
    pub url: Option<String>,
    pub description: Option<String>,
    pub rating: Option<f64>,
    pub reviews: Option<i32>,
    pub rank: Option<i32>,
    pub rank_total: Option<i32>,
    pub stars: Option<f64>,
}

/// Cities whose name or country contains `q` (case-insensitive), by name.
pub fn cities(conn: &mut PgConnection, q: Option<&str>, limit: i64) -> Result<(Vec<City>, i64)> {
    let filtered = || {
        let mut b = cities::table.into_boxed();
        if let Some(q) = q.filter(|q| !q.is_empty()) {
            let pat = format!("%{}%", escape_like(q));
            b = b.filter(cities::name.ilike(pat.clone()).or(cities::country.ilike(pat)));
        }
        b
    };
    let total = filtered().count().get_result(conn)?;
    let rows = filtered().order((cities::name.asc(), cities::country.asc())).limit(limit).select(City::as_select()).load(conn)?;
    Ok((rows, total))
}

/// Inserts or updates a hotel by (source, source_id); returns its id.
pub fn upsert_hotel(conn: &mut PgConnection, h: &NewHotel) -> Result<i64> {
    Ok(diesel::insert_into(hotels::table)
        .values(h)
        .on_conflict((hotels::source, hotels::source_id))
        .do_update()
        .set((h, hotels::updated_at.eq(diesel::dsl::now)))
        .returning(hotels::id)
        .get_result(conn)?)
}

/// How a listing is ordered: a column, ascending or descending (`-name`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HotelOrder {
    Name(bool),
    Rating(bool),
    Reviews(bool),
    Rank(bool),
    /// Selections only: when it was selected.
    SelectedAt(bool),
}

impl HotelOrder {
    /// `name`, `-name`, `rating`, `-rating`, `reviews`, `-reviews`, `rank`,
    /// `-rank` (and `selected_at`, `-selected_at` when `selections`).
    pub fn parse(s: &str, selections: bool) -> Option<Self> {
        let (desc, key) = match s.strip_prefix('-') {
            Some(k) => (true, k),
            None => (false, s),
        };
        Some(match key {
            "name" => HotelOrder::Name(desc),
            "rating" => HotelOrder::Rating(desc),
            "reviews" => HotelOrder::Reviews(desc),
            "rank" => HotelOrder::Rank(desc),
            "selected_at" if selections => HotelOrder::SelectedAt(desc),
            _ => return None,
        })
    }
}

/// `q` with LIKE's wildcards and escape character escaped.
pub(crate) fn escape_like(q: &str) -> String {
    q.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

type HotelQuery<'a> = hotels::BoxedQuery<'a, diesel::pg::Pg>;

fn order_hotels(q: HotelQuery<'_>, order: HotelOrder) -> HotelQuery<'_> {
    match order {
        HotelOrder::Name(false) => q.order((hotels::name.asc(), hotels::id.asc())),
        HotelOrder::Name(true) => q.order((hotels::name.desc(), hotels::id.asc())),
        HotelOrder::Rating(false) => q.order((hotels::rating.asc().nulls_last(), hotels::id.asc())),
        HotelOrder::Rating(true) => q.order((hotels::rating.desc().nulls_last(), hotels::id.asc())),
        HotelOrder::Reviews(false) => q.order((hotels::reviews.asc().nulls_last(), hotels::id.asc())),
        HotelOrder::Reviews(true) => q.order((hotels::reviews.desc().nulls_last(), hotels::id.asc())),
        HotelOrder::Rank(false) | HotelOrder::SelectedAt(false) => q.order((hotels::rank.asc().nulls_last(), hotels::id.asc())),
        HotelOrder::Rank(true) | HotelOrder::SelectedAt(true) => q.order((hotels::rank.desc().nulls_last(), hotels::id.asc())),
    }
}

/// Hotels, optionally of one city and whose name contains `q`, with the total.
pub fn hotels(conn: &mut PgConnection, city: Option<i32>, q: Option<&str>, order: HotelOrder, offset: i64, limit: i64) -> Result<(Vec<Hotel>, i64)> {
    let filtered = || {
        let mut b = hotels::table.into_boxed();
        if let Some(c) = city {
            b = b.filter(hotels::city_id.eq(c));
        }
        if let Some(q) = q.filter(|q| !q.is_empty()) {
            b = b.filter(hotels::name.ilike(format!("%{}%", escape_like(q))));
        }
        b
    };
    let total = filtered().count().get_result(conn)?;
    let rows = order_hotels(filtered(), order).offset(offset).limit(limit).select(Hotel::as_select()).load(conn)?;
    Ok((rows, total))
}

/// One hotel, if `id` is one.
pub fn hotel(conn: &mut PgConnection, id: i64) -> Result<Option<Hotel>> {
    Ok(hotels::table.find(id).select(Hotel::as_select()).first(conn).optional()?)
}

/// One of the key's selected hotels with when it was selected, if it is one.
pub fn selection(conn: &mut PgConnection, owner: Uuid, hotel_id: i64) -> Result<Option<(Hotel, DateTime<Utc>)>> {
    Ok(selections::table
        .inner_join(hotels::table)
        .filter(selections::owner_id.eq(owner))
        .filter(selections::hotel_id.eq(hotel_id))
        .select((Hotel::as_select(), selections::selected_at))
        .first(conn)
        .optional()?)
}

/// Of `ids`, those that are hotels.
pub fn existing_hotel_ids(conn: &mut PgConnection, ids: &[i64]) -> Result<Vec<i64>> {
    Ok(hotels::table.filter(hotels::id.eq_any(ids)).select(hotels::id).load(conn)?)
}

/// One change to a key's selections, as the persister applies it.
#[derive(Debug, Clone, Copy)]
pub struct SelectionChange {
    pub owner: Uuid,
    pub hotel_id: i64,
    pub add: bool,
    pub at: DateTime<Utc>,
}

/// Applies changes in one transaction, idempotently: adding a selection that
/// exists, or removing one that does not, changes nothing. Consecutive changes
/// of the same kind go in one multi-row statement (in message order).
pub fn apply_selections(conn: &mut PgConnection, changes: &[SelectionChange]) -> Result<()> {
    // 3 bind parameters a row; PostgreSQL allows 65,535 a statement.
    const ROWS_PER_STATEMENT: usize = 20_000;
    conn.transaction(|conn| {
        for run in changes.chunk_by(|a, b| a.add == b.add) {
            for part in run.chunks(ROWS_PER_STATEMENT) {
                if part[0].add {
                    let rows: Vec<_> = part
                        .iter()
                        .map(|c| (selections::owner_id.eq(c.owner), selections::hotel_id.eq(c.hotel_id), selections::selected_at.eq(c.at)))
                        .collect();
                    diesel::insert_into(selections::table).values(rows).on_conflict_do_nothing().execute(conn)?;
                } else {
                    for c in part {
                        diesel::delete(selections::table.filter(selections::owner_id.eq(c.owner)).filter(selections::hotel_id.eq(c.hotel_id)))
                            .execute(conn)?;
                    }
                }
            }
        }
        Ok(())
    })
}

/// The key's selected hotels with when they were selected, and the total.
pub fn selections(
    conn: &mut PgConnection,
    owner: Uuid,
    q: Option<&str>,
    order: HotelOrder,
    offset: i64,
    limit: i64,
) -> Result<(Vec<(Hotel, DateTime<Utc>)>, i64)> {
    let filtered = || {
        let mut b = selections::table.inner_join(hotels::table).filter(selections::owner_id.eq(owner)).into_boxed();
        if let Some(q) = q.filter(|q| !q.is_empty()) {
            b = b.filter(hotels::name.ilike(format!("%{}%", escape_like(q))));
        }
        b
    };
    let total = filtered().count().get_result(conn)?;
    let q = filtered();
    let q = match order {
        HotelOrder::Name(false) => q.order((hotels::name.asc(), hotels::id.asc())),
        HotelOrder::Name(true) => q.order((hotels::name.desc(), hotels::id.asc())),
        HotelOrder::Rating(false) => q.order((hotels::rating.asc().nulls_last(), hotels::id.asc())),
        HotelOrder::Rating(true) => q.order((hotels::rating.desc().nulls_last(), hotels::id.asc())),
        HotelOrder::Reviews(false) => q.order((hotels::reviews.asc().nulls_last(), hotels::id.asc())),
        HotelOrder::Reviews(true) => q.order((hotels::reviews.desc().nulls_last(), hotels::id.asc())),
        HotelOrder::Rank(false) => q.order((hotels::rank.asc().nulls_last(), hotels::id.asc())),
        HotelOrder::Rank(true) => q.order((hotels::rank.desc().nulls_last(), hotels::id.asc())),
        HotelOrder::SelectedAt(false) => q.order((selections::selected_at.asc(), hotels::id.asc())),
        HotelOrder::SelectedAt(true) => q.order((selections::selected_at.desc(), hotels::id.asc())),
    };
    let rows = q.offset(offset).limit(limit).select((Hotel::as_select(), selections::selected_at)).load(conn)?;
    Ok((rows, total))
}
