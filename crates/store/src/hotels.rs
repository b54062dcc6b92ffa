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
        if let Some(pat) = contains(q) {
            b = b.filter(cities::name.ilike(pat.clone()).or(cities::country.ilike(pat)));
        }
        b
    };
    let total = filtered().count().get_result(conn)?;
    let rows = filtered().order((cities::name.asc(), cities::country.asc())).limit(limit).select(City::as_select()).load(conn)?;
    Ok((rows, total))
}

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);

/// The city named `name` (any case) whose hotel list page on `source`'s site
/// is known, with that page's path.
pub fn city_list_page(conn: &mut PgConnection, source: &str, name: &str) -> Result<Option<(City, String)>> {
    let found: Option<(City, Option<String>)> = cities::table
        .filter(cities::source.eq(source))
        .filter(cities::list_path.is_not_null())
        .filter(lower(cities::name).eq(lower(name)))
        .order(cities::found_at.desc())
        .select((City::as_select(), cities::list_path))
        .first(conn)
        .optional()?;
    Ok(found.and_then(|(c, path)| Some((c, path?))))
}

/// The city (`name`, `country`), added to the catalogue if new, with its
/// hotel list page on `source`'s site.
pub fn remember_city(conn: &mut PgConnection, name: &str, country: &str, source: &str, list_path: &str) -> Result<City> {
    Ok(diesel::insert_into(cities::table)
        .values((cities::name.eq(name), cities::country.eq(country), cities::source.eq(source), cities::list_path.eq(list_path), cities::found_at.eq(diesel::dsl::now)))
        .on_conflict((cities::name, cities::country))
        .do_update()
        .set((cities::source.eq(source), cities::list_path.eq(list_path), cities::found_at.eq(diesel::dsl::now)))
        .returning(City::as_returning())
        .get_result(conn)?)
}

/// The catalogue's city named `name` (any case), the first by country.
pub fn city_named(conn: &mut PgConnection, name: &str) -> Result<Option<City>> {
    Ok(cities::table
        .filter(lower(cities::name).eq(lower(name)))
        .order(cities::country.asc())
        .select(City::as_select())
        .first(conn)
        .optional()?)
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
fn escape_like(q: &str) -> String {
    q.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// The ILIKE pattern that matches text containing `q`; none for an absent or
/// empty `q`, which filters nothing. On hotels' names and descriptions the
/// trigram indexes answer it for a `q` of three characters or more.
pub(crate) fn contains(q: Option<&str>) -> Option<String> {
    q.filter(|q| !q.is_empty()).map(|q| format!("%{}%", escape_like(q)))
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

/// Hotels a listing counts exactly; past this many its total says "at least".
/// Counting every match of a word in a third of a million descriptions takes
/// a second; counting this many takes milliseconds (docs/benchmarks.md).
pub const HOTEL_COUNT_CAP: i64 = 10_000;

/// A page of a listing and how many match: exactly, or at least `total` when
/// more than [`HOTEL_COUNT_CAP`] do.
#[derive(Debug)]
pub struct HotelPage {
    pub items: Vec<Hotel>,
    pub total: i64,
    pub total_exact: bool,
}

/// [`order_hotels`]'s order as SQL whose first key no index matches.
fn unindexed_order(order: HotelOrder) -> &'static str {
    match order {
        HotelOrder::Name(false) => "hotels.name || '' ASC, hotels.id ASC",
        HotelOrder::Name(true) => "hotels.name || '' DESC, hotels.id ASC",
        HotelOrder::Rating(false) => "hotels.rating + 0 ASC NULLS LAST, hotels.id ASC",
        HotelOrder::Rating(true) => "hotels.rating + 0 DESC NULLS LAST, hotels.id ASC",
        HotelOrder::Reviews(false) => "hotels.reviews ASC NULLS LAST, hotels.id ASC",
        HotelOrder::Reviews(true) => "hotels.reviews DESC NULLS LAST, hotels.id ASC",
        HotelOrder::Rank(false) | HotelOrder::SelectedAt(false) => "hotels.rank ASC NULLS LAST, hotels.id ASC",
        HotelOrder::Rank(true) | HotelOrder::SelectedAt(true) => "hotels.rank DESC NULLS LAST, hotels.id ASC",
    }
}

/// Hotels, optionally of one city and whose name or description contains `q`
/// (any case), with how many match.
pub fn hotels(conn: &mut PgConnection, city: Option<i32>, q: Option<&str>, order: HotelOrder, offset: i64, limit: i64) -> Result<HotelPage> {
    let filtered = || {
        let mut b = hotels::table.into_boxed();
        if let Some(c) = city {
            b = b.filter(hotels::city_id.eq(c));
        }
        if let Some(pat) = contains(q) {
            b = b.filter(hotels::name.ilike(pat.clone()).or(hotels::description.ilike(pat)));
        }
        b
    };
    let counted = filtered().select(hotels::id).limit(HOTEL_COUNT_CAP + 1).load::<i64>(conn)?.len() as i64;
    let few = counted <= HOTEL_COUNT_CAP;
    let page = if few && q.is_some_and(|q| !q.is_empty()) {
        // Few matches: they are found through the trigram indexes and then
        // sorted. Ordered by an expression no index holds, so that the
        // planner cannot walk `hotels_by_name` or `hotels_by_rating` hoping to
        // meet matches early: for a query that matches nothing that walk
        // reads the whole table in index order (seconds at a million hotels).
        filtered().order(diesel::dsl::sql::<diesel::sql_types::Text>(unindexed_order(order)))
    } else {
        order_hotels(filtered(), order)
    };
    let items = page.offset(offset).limit(limit).select(Hotel::as_select()).load(conn)?;
    Ok(HotelPage { items, total: counted.min(HOTEL_COUNT_CAP), total_exact: few })
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

/// The key's selected hotels whose name or description contains `q`, with when
/// they were selected, and the total.
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
        if let Some(pat) = contains(q) {
            b = b.filter(hotels::name.ilike(pat.clone()).or(hotels::description.ilike(pat)));
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
