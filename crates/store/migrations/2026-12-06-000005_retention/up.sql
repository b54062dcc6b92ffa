-- Retention: finished jobs expire per kind (the worker's sweeper), found
-- oldest first through this index; entries are made when a job ends.
CREATE INDEX jobs_kind_finished ON jobs (kind, finished_at) WHERE finished_at IS NOT NULL AND parent_id IS NULL;
-- Deleting a job deletes its events (ON DELETE CASCADE) and checks that no
-- gene file names it: without these, each job deleted read both tables
-- whole (125 jobs/s at 200,000 jobs; docs/benchmarks.md, "Retention").
CREATE INDEX job_events_job ON job_events (job_id);
CREATE INDEX gene_files_job ON gene_files (job_id) WHERE job_id IS NOT NULL;
-- A gene file deleted by its owner or expired with its job: it is gone from
-- the API at once, and the sweeper removes its sequences in small batches,
-- then its blobs, then the row.
ALTER TABLE gene_files ADD COLUMN deleted_at timestamptz;
CREATE INDEX gene_files_deleted ON gene_files (deleted_at) WHERE deleted_at IS NOT NULL;
-- Gene files never parsed expire by age.
CREATE INDEX gene_files_unparsed ON gene_files (created_at) WHERE job_id IS NULL AND deleted_at IS NULL;
