//! Helpers shared by some of the test files (`mod common;`); each file
//! uses some of them.
#![allow(dead_code)]

use crunch_e2e::TestEnv;

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

/// The id of the test environment's API key (the first one created).
pub fn key_id(conn: &mut diesel::PgConnection) -> anyhow::Result<uuid::Uuid> {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Key {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        id: uuid::Uuid,
    }
    Ok(diesel::sql_query("SELECT id FROM api_keys ORDER BY created_at LIMIT 1").get_result::<Key>(conn)?.id)
}

/// The environment's bus settings and a channel to its RabbitMQ (keep the
/// connection while the channel is used), to publish into its queues directly.
pub async fn raw_channel(env: &TestEnv) -> anyhow::Result<(crunch_bus::BusConfig, crunch_bus::lapin::Connection, crunch_bus::lapin::Channel)> {
    let cfg = crunch_e2e::gateway_config(&env.database_url, &crunch_e2e::amqp_url(), &env.namespace, 4096).core.amqp.bus_config();
    let conn = crunch_bus::lapin::Connection::connect(&crunch_e2e::amqp_url(), Default::default()).await?;
    let ch = conn.create_channel().await?;
    Ok((cfg, conn, ch))
}
