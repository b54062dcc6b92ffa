//! Helpers shared by some of the test files (`mod common;`).

/// A hotel with only its identity and name.
pub fn bare_hotel(source: &str, source_id: &str, name: &str) -> crunch_store::hotels::NewHotel {
    crunch_store::hotels::NewHotel {
        source: source.into(),
        source_id: source_id.into(),
        city_id: None,
        name: name.into(),
        url: None,
        description: None,
        rating: None,
        reviews: None,
        rank: None,
        rank_total: None,
        stars: None,
    }
}
