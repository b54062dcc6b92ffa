DROP TABLE prime_chunks;
DROP INDEX jobs_parent;
ALTER TABLE jobs DROP COLUMN shard_index;
ALTER TABLE jobs DROP COLUMN parent_id;
