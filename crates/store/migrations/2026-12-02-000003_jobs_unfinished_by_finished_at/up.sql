-- The partial index of unfinished jobs was defined by status. The batch
-- transitions filter on status too (`id = ANY(...) AND status = 'queued'`),
-- and on a table autovacuum had not analysed yet (a new deployment, or a
-- backlog grown since the last ANALYZE) the planner guessed that such a
-- filter keeps 0.5% of the rows and ANDed the primary key with a bitmap scan
-- of this whole index, which holds every queued job: 20,000 submissions read
-- 17 million index entries. Defined by finished_at, it is the same set of
-- rows (the CHECK below keeps it so), and no status filter can select it.
ALTER TABLE jobs ADD CONSTRAINT jobs_finished_at_iff_ended
    CHECK ((finished_at IS NULL) = (status IN ('queued', 'running')));
DROP INDEX jobs_unfinished;
CREATE INDEX jobs_unfinished ON jobs (updated_at) WHERE finished_at IS NULL;
