DROP INDEX jobs_unfinished;
CREATE INDEX jobs_unfinished ON jobs (updated_at) WHERE status IN ('queued', 'running');
ALTER TABLE jobs DROP CONSTRAINT jobs_finished_at_iff_ended;
