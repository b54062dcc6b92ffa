-- Shards: a wide prime range is split into child jobs any worker can take;
-- the parent aggregates them.
ALTER TABLE jobs ADD COLUMN parent_id uuid REFERENCES jobs (id) ON DELETE CASCADE;
ALTER TABLE jobs ADD COLUMN shard_index integer;
CREATE INDEX jobs_parent ON jobs (parent_id, shard_index) WHERE parent_id IS NOT NULL;

-- Prime lists, stored compactly: each row holds up to 65,536 consecutive
-- primes of one job as LEB128-encoded gaps (first_prime itself is stored as
-- the u64's two's-complement bit pattern in a bigint).
CREATE TABLE prime_chunks (
    job_id       uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    start_index  bigint NOT NULL,
    first_prime  bigint NOT NULL,
    count        integer NOT NULL CHECK (count > 0),
    data         bytea NOT NULL,
    PRIMARY KEY (job_id, start_index)
);
