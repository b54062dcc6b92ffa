DROP INDEX jobs_owner_status_seq;
CREATE INDEX jobs_owner_status_seq ON jobs (owner_id, status, seq DESC);
ALTER TABLE jobs ADD CONSTRAINT jobs_seq_key UNIQUE (seq);
