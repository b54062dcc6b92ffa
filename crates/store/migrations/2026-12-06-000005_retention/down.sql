DROP INDEX gene_files_unparsed;
DROP INDEX gene_files_deleted;
ALTER TABLE gene_files DROP COLUMN deleted_at;
DROP INDEX gene_files_job;
DROP INDEX job_events_job;
DROP INDEX jobs_kind_finished;
