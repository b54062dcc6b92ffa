-- A key's jobs by when they finished: the dashboard's charts read the last
-- hour of them (GET /api/v1/stats/jobs). Entries are made when a job ends
-- (the partial predicate), an update that is not HOT anyway: the status and
-- finished_at it changes are already in other indexes.
CREATE INDEX jobs_owner_finished ON jobs (owner_id, finished_at) WHERE finished_at IS NOT NULL AND parent_id IS NULL;
