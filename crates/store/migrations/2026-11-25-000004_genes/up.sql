-- Gene files (the 002 seed's Genobase flow as the `genes` job kind).

CREATE TABLE gene_files (
    id           uuid PRIMARY KEY,
    owner_id     uuid NOT NULL REFERENCES api_keys (id),
    file_name    text NOT NULL,
    format       text NOT NULL CHECK (format IN ('fasta', 'csv', 'fastq')),
    compression  text CHECK (compression IN ('gzip')),
    on_invalid   text NOT NULL DEFAULT 'skip' CHECK (on_invalid IN ('skip', 'fail')),
    object_key   text NOT NULL,
    size_bytes   bigint,
    uploaded_at  timestamptz,
    job_id       uuid REFERENCES jobs (id),
    -- The parse's checkpoint, written in the same transaction as each batch
    -- of sequences: records consumed so far and the running totals.
    records_done bigint NOT NULL DEFAULT 0,
    checkpoint   jsonb,
    -- The result document in blob storage (S3 backend), once written.
    result_key   text,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX gene_files_owner ON gene_files (owner_id, created_at DESC);

CREATE TABLE gene_sequences (
    file_id      uuid NOT NULL REFERENCES gene_files (id) ON DELETE CASCADE,
    record_index bigint NOT NULL,
    line_number  bigint NOT NULL,
    name         text NOT NULL,
    sequence     text NOT NULL,
    length       bigint NOT NULL,
    gc           double precision NOT NULL,
    PRIMARY KEY (file_id, record_index)
);
-- Long sequences are TOASTed: lz4 compresses them several times faster than
-- the default pglz (storing a 1 GiB FASTA was bound by pglz).
ALTER TABLE gene_sequences ALTER COLUMN sequence SET COMPRESSION lz4;
-- One sequence per name and file: the first wins (names can be long, so the
-- index holds their hash).
CREATE UNIQUE INDEX gene_sequences_name ON gene_sequences (file_id, md5(name));
