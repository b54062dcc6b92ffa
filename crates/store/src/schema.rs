// The diesel schema of `migrations/` (as `diesel print-schema` writes it).

diesel::table! {
    api_keys (id) {
        id -> Uuid,
        name -> Text,
        key_hash -> Bytea,
        created_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    jobs (id) {
        id -> Uuid,
        seq -> Int8,
        owner_id -> Uuid,
        kind -> Text,
        params -> Jsonb,
        dedup_key -> Bytea,
        status -> Text,
        progress -> Float8,
        result -> Nullable<Jsonb>,
        error -> Nullable<Jsonb>,
        attempts -> Int4,
        created_at -> Timestamptz,
        started_at -> Nullable<Timestamptz>,
        finished_at -> Nullable<Timestamptz>,
        published_at -> Nullable<Timestamptz>,
        updated_at -> Timestamptz,
        parent_id -> Nullable<Uuid>,
        shard_index -> Nullable<Int4>,
        monitor_id -> Nullable<Uuid>,
        stage -> Nullable<Text>,
    }
}

diesel::table! {
    prime_chunks (job_id, start_index) {
        job_id -> Uuid,
        start_index -> Int8,
        first_prime -> Int8,
        count -> Int4,
        data -> Bytea,
    }
}

diesel::table! {
    job_events (id) {
        id -> Int8,
        job_id -> Uuid,
        event -> Jsonb,
        published -> Bool,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    cities (id) {
        id -> Int4,
        name -> Text,
        country -> Text,
        source -> Nullable<Text>,
        list_path -> Nullable<Text>,
        found_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    hotels (id) {
        id -> Int8,
        source -> Text,
        source_id -> Text,
        city_id -> Nullable<Int4>,
        name -> Text,
        url -> Nullable<Text>,
        description -> Nullable<Text>,
        rating -> Nullable<Float8>,
        reviews -> Nullable<Int4>,
        rank -> Nullable<Int4>,
        rank_total -> Nullable<Int4>,
        stars -> Nullable<Float8>,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    selections (owner_id, hotel_id) {
        owner_id -> Uuid,
        hotel_id -> Int8,
        selected_at -> Timestamptz,
    }
}

diesel::table! {
    gene_files (id) {
        id -> Uuid,
        owner_id -> Uuid,
        file_name -> Text,
        format -> Text,
        compression -> Nullable<Text>,
        on_invalid -> Text,
        object_key -> Text,
        size_bytes -> Nullable<Int8>,
        uploaded_at -> Nullable<Timestamptz>,
        job_id -> Nullable<Uuid>,
        records_done -> Int8,
        checkpoint -> Nullable<Jsonb>,
        result_key -> Nullable<Text>,
        created_at -> Timestamptz,
        upload_claim -> Nullable<Uuid>,
        upload_claimed_at -> Nullable<Timestamptz>,
        deleted_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    gene_sequences (file_id, record_index) {
        file_id -> Uuid,
        record_index -> Int8,
        line_number -> Int8,
        name -> Text,
        sequence -> Text,
        length -> Int8,
        gc -> Float8,
    }
}

diesel::table! {
    gene_sequences_pending (file_id, record_index) {
        file_id -> Uuid,
        record_index -> Int8,
        line_number -> Int8,
        name -> Text,
        sequence -> Text,
        length -> Int8,
        gc -> Float8,
    }
}

diesel::joinable!(jobs -> api_keys (owner_id));
diesel::table! {
    monitors (id) {
        id -> Uuid,
        owner_id -> Uuid,
        url -> Text,
        params -> Jsonb,
        interval_s -> Int4,
        paused -> Bool,
        next_run_at -> Timestamptz,
        current_job -> Nullable<Uuid>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    monitor_checks (monitor_id, checked_at, job_id) {
        monitor_id -> Uuid,
        checked_at -> Timestamptz,
        job_id -> Uuid,
        ok -> Bool,
        status -> Nullable<Int4>,
        error -> Nullable<Text>,
        total_ms -> Nullable<Float8>,
    }
}

diesel::joinable!(hotels -> cities (city_id));
diesel::joinable!(selections -> hotels (hotel_id));
diesel::joinable!(job_events -> jobs (job_id));
diesel::joinable!(prime_chunks -> jobs (job_id));
diesel::joinable!(gene_sequences -> gene_files (file_id));
diesel::joinable!(gene_sequences_pending -> gene_files (file_id));
diesel::joinable!(gene_files -> jobs (job_id));
diesel::joinable!(monitor_checks -> monitors (monitor_id));
diesel::allow_tables_to_appear_in_same_query!(api_keys, jobs, job_events, prime_chunks, cities, hotels, selections, gene_files, gene_sequences, gene_sequences_pending, monitors, monitor_checks);
