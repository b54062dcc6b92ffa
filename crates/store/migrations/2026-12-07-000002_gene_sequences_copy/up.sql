-- Gene sequences are written with COPY, and the one-per-name rule no longer
-- rests on a unique index (random inserts into md5(name) cost 3.6x of the
-- load). The worker keeps a Bloom filter of the names it has seen: a record
-- whose name may have come before waits here instead of in gene_sequences,
-- and one statement at the end of the file keeps the first of each name that
-- is not stored yet (crunch_store::genes::resolve_pending).
DROP INDEX gene_sequences_name;
-- Nor on a foreign key: its check, one query per row, made a COPY of tiny
-- rows 3.5x slower. Sequences are written only for an existing file (by its
-- job), and the retention sweeper (purge_gene_file) removes them before the
-- file's row, so none is left without its file.
ALTER TABLE gene_sequences DROP CONSTRAINT gene_sequences_file_id_fkey;

CREATE TABLE gene_sequences_pending (
    file_id      uuid NOT NULL,
    record_index bigint NOT NULL,
    line_number  bigint NOT NULL,
    name         text NOT NULL,
    sequence     text NOT NULL,
    length       bigint NOT NULL,
    gc           double precision NOT NULL,
    PRIMARY KEY (file_id, record_index)
);
ALTER TABLE gene_sequences_pending ALTER COLUMN sequence SET COMPRESSION lz4;
